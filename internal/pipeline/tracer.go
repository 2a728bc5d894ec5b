package pipeline

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// Tracer traces deliveries (OpenTelemetry, when it is configured). With
// Config.Tracer nil nothing is traced and a Write costs nothing more.
type Tracer interface {
	// Sink returns the tracer of deliveries to the named sink. It is called
	// once per sink when the Runtime is built.
	Sink(name string) SinkTracer
}

// SinkTracer starts the delivery spans of one sink. Only that sink's
// worker goroutine uses it.
type SinkTracer interface {
	// Start starts the span of delivering e, which lasts until the event is
	// acknowledged or dead-lettered, retries included. It returns nil when
	// e carries no trace context: only traced events get spans, so a binlog
	// stream pays for none.
	Start(ctx context.Context, e *event.Event) tracectx.Span
}

// startSpans starts the delivery spans of a new batch.
func (w *sinkWorker) startSpans(ctx context.Context, batch []attempt) {
	if w.tracer == nil {
		return
	}
	for i := range batch {
		batch[i].span = w.tracer.Start(ctx, batch[i].event)
	}
}

// traceContext returns the context of a Write of pending: when some of
// them have spans, it carries them for the sink to send downstream.
func (w *sinkWorker) traceContext(ctx context.Context, pending []attempt) context.Context {
	if w.tracer == nil {
		return ctx
	}
	w.spans = w.spans[:0]
	traced := false
	for i := range pending {
		w.spans = append(w.spans, pending[i].span)
		traced = traced || pending[i].span != nil
	}
	if !traced {
		return ctx
	}
	return tracectx.WithSpans(ctx, w.spans)
}

// endSpans ends the spans of settled (or abandoned) attempts.
func (w *sinkWorker) endSpans(as []attempt, err error) {
	if w.tracer == nil {
		return
	}
	for i := range as {
		w.endSpan(as[i], err)
	}
}

func (w *sinkWorker) endSpan(a attempt, err error) {
	if a.span != nil {
		a.span.End(a.tries, err)
	}
}

// sinkTracer is t's tracer for the named sink; nil when t is nil.
func sinkTracer(t Tracer, sink string) SinkTracer {
	if t == nil {
		return nil
	}
	return t.Sink(sink)
}
