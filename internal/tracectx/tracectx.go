// Package tracectx carries W3C trace context (traceparent, tracestate)
// from sources to the transport headers sinks write, without any tracing
// SDK: sources validate what they receive, sinks ask which trace context
// goes out with each event of a Write.
//
// What a sink sends is the event's own traceparent extension, unless the
// pipeline traces deliveries (OpenTelemetry export configured): then the
// Write's context carries, per event, the context of Ferry's delivery span
// so that downstream spans nest under it. The extension itself is never
// changed by a sink: it stays the context in which the event was created,
// as the CloudEvents distributed-tracing extension intends, and events are
// shared by every sink they are routed to.
package tracectx

import (
	"context"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Extension names of the CloudEvents distributed-tracing extension; also
// the W3C header names.
const (
	Traceparent = "traceparent"
	Tracestate  = "tracestate"
)

// maxTracestate is the longest tracestate passed on. W3C lets a platform
// drop a tracestate it cannot propagate whole; 512 bytes is what the
// specification says every platform should propagate.
const maxTracestate = 512

// Valid reports whether tp is a W3C traceparent a receiver must accept:
// version-traceid-parentid-flags in lowercase hex, a version other than
// ff, trace and parent ids not all zero; version 00 has exactly these four
// fields, later versions may append fields after a dash.
func Valid(tp string) bool {
	if len(tp) < 55 || (len(tp) > 55 && (tp[:2] == "00" || tp[55] != '-')) {
		return false
	}
	if tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || tp[:2] == "ff" {
		return false
	}
	return lowerHex(tp[:2]) && lowerHex(tp[3:35]) && lowerHex(tp[36:52]) && lowerHex(tp[53:55]) &&
		!zeros(tp[3:35]) && !zeros(tp[36:52])
}

// ValidState reports whether ts can be passed on as tracestate: printable
// ASCII, at most 512 bytes. Its list syntax is the concern of the vendors
// that read it.
func ValidState(ts string) bool {
	if len(ts) > maxTracestate {
		return false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < 0x20 || ts[i] > 0x7e {
			return false
		}
	}
	return true
}

// TraceID returns the trace-id field of a valid traceparent, "" otherwise.
func TraceID(tp string) string {
	if !Valid(tp) {
		return ""
	}
	return tp[3:35]
}

// XRay converts a traceparent to the AWS X-Ray trace header that
// EventBridge's TraceHeader wants (X-Ray drops headers it cannot parse):
// Root=1-<first 8 hex of the trace id>-<other 24>;Parent=<span id>;Sampled=<0|1>,
// the mapping OpenTelemetry's X-Ray propagator uses. It returns "" for an
// invalid traceparent.
func XRay(tp string) string {
	if !Valid(tp) {
		return ""
	}
	sampled := "0"
	if Sampled(tp) {
		sampled = "1"
	}
	var b strings.Builder
	b.Grow(80)
	b.WriteString("Root=1-")
	b.WriteString(tp[3:11])
	b.WriteByte('-')
	b.WriteString(tp[11:35])
	b.WriteString(";Parent=")
	b.WriteString(tp[36:52])
	b.WriteString(";Sampled=")
	b.WriteString(sampled)
	return b.String()
}

// Sampled reports whether a valid traceparent has the sampled flag set.
func Sampled(tp string) bool {
	c := tp[54] // low nibble of the flags; sampled is its bit 0
	if c >= 'a' {
		c -= 'a' - 10
	} else {
		c -= '0'
	}
	return c&1 == 1
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func zeros(s string) bool {
	return strings.Trim(s, "0") == ""
}

// Span is the span of one event's delivery to one sink, from its first
// attempt until it is acknowledged or dead-lettered. Implementations are
// safe for use by one sink worker at a time.
type Span interface {
	// Header returns the trace context the delivery carries downstream:
	// the span's own, a child of the event's traceparent.
	Header() (traceparent, tracestate string)
	// End ends the span after attempts tries; err is nil when the sink
	// acknowledged the event and the reason otherwise.
	End(attempts int, err error)
}

type spansKey struct{}

// WithSpans returns ctx carrying the delivery spans of a Write, index
// aligned with its events; nil entries are events without a span. The
// slice is read during the Write only.
func WithSpans(ctx context.Context, spans []Span) context.Context {
	return context.WithValue(ctx, spansKey{}, spans)
}

// Lookup answers which trace context goes out with each event of a Write.
// Its zero value reads events' own extensions.
type Lookup struct {
	spans []Span
}

// FromContext returns the Lookup of a Write's ctx. Call it once per Write.
func FromContext(ctx context.Context) Lookup {
	spans, _ := ctx.Value(spansKey{}).([]Span)
	return Lookup{spans: spans}
}

// For returns the traceparent and tracestate to send with events[i], e:
// the delivery span's when there is one, else the event's traceparent and
// tracestate extensions when the traceparent is valid, else "".
func (l Lookup) For(i int, e *event.Event) (traceparent, tracestate string) {
	if i < len(l.spans) && l.spans[i] != nil {
		return l.spans[i].Header()
	}
	return OfEvent(e)
}

// OfEvent returns the event's traceparent and tracestate extensions, ""
// when the traceparent is missing or invalid (then tracestate is dropped
// too, as W3C says).
func OfEvent(e *event.Event) (traceparent, tracestate string) {
	ext := extensions(e)
	tp, _ := ext[Traceparent].(string)
	if !Valid(tp) {
		return "", ""
	}
	ts, _ := ext[Tracestate].(string)
	if !ValidState(ts) {
		ts = ""
	}
	return tp, ts
}

// extensions returns the event's extensions without the copy
// event.Extensions() makes (read-only use).
func extensions(e *event.Event) map[string]any {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		return ec.Extensions
	}
	return e.Extensions()
}
