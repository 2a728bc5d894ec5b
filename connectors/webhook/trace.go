package webhook

import (
	"context"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// TraceContext is a W3C trace context: a valid traceparent (or "") and
// its tracestate.
type TraceContext struct {
	Traceparent, Tracestate string
}

// Tracer records a span per received request (OpenTelemetry, when
// configured). It is called from the listener's goroutines concurrently.
type Tracer interface {
	// StartRequest starts the server span of receiving r for source, a
	// child of parent (zero: a new trace). It returns the trace context the
	// request's events carry, and end, called once with the HTTP status
	// answered.
	StartRequest(ctx context.Context, source string, r *http.Request, parent TraceContext) (TraceContext, func(status int))
}

// Option changes a Source built by New.
type Option func(*Source)

// WithTracer traces every request with t.
func WithTracer(t Tracer) Option {
	return func(s *Source) { s.tracer = t }
}

// requestTrace returns the request's valid W3C trace context. An invalid
// traceparent (or several) is ignored, as W3C says, and counted; its
// tracestate is dropped with it.
func (s *Source) requestTrace(r *http.Request) TraceContext {
	tps := r.Header.Values(tracectx.Traceparent)
	if len(tps) == 0 {
		return TraceContext{}
	}
	if len(tps) > 1 || !tracectx.Valid(strings.TrimSpace(tps[0])) {
		s.stats.InvalidTraceparent.Add(1)
		s.log.Debug("ignoring an invalid traceparent header", "remote", r.RemoteAddr, "headers", len(tps))
		return TraceContext{}
	}
	tc := TraceContext{Traceparent: strings.TrimSpace(tps[0])}
	// Several tracestate headers are one list (RFC 9110 field combining).
	if ts := strings.Join(r.Header.Values(tracectx.Tracestate), ","); tracectx.ValidState(ts) {
		tc.Tracestate = ts
	}
	return tc
}

// startTrace starts the request's span when a tracer is set, returning
// the trace context its events carry, the writer to answer through and
// the function that ends the span (nil without a tracer).
func (s *Source) startTrace(w http.ResponseWriter, r *http.Request) (TraceContext, http.ResponseWriter, func()) {
	tc := s.requestTrace(r)
	if s.tracer == nil {
		return tc, w, nil
	}
	tc, end := s.tracer.StartRequest(r.Context(), s.name, r, tc)
	cw := &codeWriter{ResponseWriter: w}
	return tc, cw, func() { end(cw.code) }
}

// traceEvent gives a CloudEvent the request carried the request's trace
// context, unless it has a traceparent extension of its own.
func traceEvent(e *event.Event, tc TraceContext) {
	if tc.Traceparent == "" {
		return
	}
	if _, ok := e.Extensions()[tracectx.Traceparent]; ok {
		return
	}
	e.SetExtension(tracectx.Traceparent, tc.Traceparent)
	if tc.Tracestate != "" {
		e.SetExtension(tracectx.Tracestate, tc.Tracestate)
	}
}
