package telemetry

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// Tracing exports OpenTelemetry spans over OTLP/HTTP: a server span per
// webhook request ("webhook receive") and a span per delivery of a traced
// event to a sink ("deliver <sink>"), children of the caller's trace.
// Downstream systems get the delivery span's context, so their spans nest
// under Ferry's. Spans are batched and exported in the background; a full
// queue drops spans rather than slowing delivery.
//
// It implements pipeline.Tracer and webhook.Tracer. Shutdown flushes.
type Tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

var (
	_ pipeline.Tracer = (*Tracing)(nil)
	_ webhook.Tracer  = (*Tracing)(nil)
)

// NewTracing starts the exporter of cfg (which must be Enabled). version
// is Ferry's, for the service.version resource attribute. Export errors
// are logged at warn with component=tracing; they never stop delivery.
func NewTracing(ctx context.Context, cfg config.Tracing, version string, log *slog.Logger) (*Tracing, error) {
	headers := make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers[k] = v.Reveal()
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(cfg.TracesURL()),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	if log != nil {
		log := log.With("component", "tracing")
		// The SDK reports export failures through this global hook; the
		// default prints them unstructured to stderr.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("span export failed", "error", err)
		}))
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))))
	return &Tracing{provider: tp, tracer: tp.Tracer("github.com/ferry-cdc/ferry")}, nil
}

// Shutdown exports the spans still queued and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

// StartRequest starts the "webhook receive" server span of r, a child of
// parent (or the root of a new trace), and returns its context for the
// request's events.
func (t *Tracing) StartRequest(ctx context.Context, source string, r *http.Request, parent webhook.TraceContext) (webhook.TraceContext, func(status int)) {
	ctx = withParent(ctx, parent.Traceparent, parent.Tracestate)
	_, span := t.tracer.Start(ctx, "webhook receive", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("ferry.source", source),
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path)))
	tp, ts := header(span.SpanContext())
	return webhook.TraceContext{Traceparent: tp, Tracestate: ts}, func(status int) {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
	}
}

// Sink returns the delivery tracer of the named sink.
func (t *Tracing) Sink(name string) pipeline.SinkTracer {
	return &sinkTracer{tracer: t.tracer, spanName: "deliver " + name, sink: attribute.String("ferry.sink", name)}
}

type sinkTracer struct {
	tracer   trace.Tracer
	spanName string
	sink     attribute.KeyValue
}

// Start starts the span of delivering e, a child of its traceparent
// extension; events without a valid one get none.
func (s *sinkTracer) Start(ctx context.Context, e *event.Event) tracectx.Span {
	tp, ts := tracectx.OfEvent(e)
	if tp == "" {
		return nil
	}
	_, span := s.tracer.Start(withParent(ctx, tp, ts), s.spanName, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(s.sink,
			attribute.String("cloudevents.event_id", e.ID()),
			attribute.String("cloudevents.event_type", e.Type())))
	d := &deliverySpan{span: span}
	d.traceparent, d.tracestate = header(span.SpanContext())
	return d
}

// deliverySpan is one event's delivery to one sink.
type deliverySpan struct {
	span                    trace.Span
	traceparent, tracestate string
}

func (d *deliverySpan) Header() (traceparent, tracestate string) { return d.traceparent, d.tracestate }

func (d *deliverySpan) End(attempts int, err error) {
	d.span.SetAttributes(attribute.Int("ferry.attempts", attempts))
	if err != nil {
		d.span.SetStatus(codes.Error, err.Error())
	}
	d.span.End()
}

// withParent returns ctx with the remote span context of a valid W3C
// traceparent; ctx unchanged for "" (a new trace starts).
func withParent(ctx context.Context, traceparent, tracestate string) context.Context {
	if !tracectx.Valid(traceparent) {
		return ctx
	}
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	_, _ = hex.Decode(tid[:], []byte(traceparent[3:35]))
	_, _ = hex.Decode(sid[:], []byte(traceparent[36:52]))
	_, _ = hex.Decode(flags[:], []byte(traceparent[53:55]))
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true}
	if tracestate != "" {
		if st, err := trace.ParseTraceState(tracestate); err == nil {
			cfg.TraceState = st
		}
	}
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(cfg))
}

// header formats a span context as W3C traceparent (version 00) and
// tracestate.
func header(sc trace.SpanContext) (traceparent, tracestate string) {
	var b [55]byte
	copy(b[:3], "00-")
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:], []byte{byte(sc.TraceFlags())})
	return string(b[:]), sc.TraceState().String()
}
