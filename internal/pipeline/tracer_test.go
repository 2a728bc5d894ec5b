package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/tracectx"
	"github.com/ferry-cdc/ferry/transform"
)

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// fakeTracer gives every traced event a span whose header names the event.
type fakeTracer struct {
	mu    sync.Mutex
	ended map[string]string // event id -> "attempts:err"
}

func (f *fakeTracer) Sink(string) SinkTracer { return f }

func (f *fakeTracer) Start(_ context.Context, e *event.Event) tracectx.Span {
	if tp, _ := tracectx.OfEvent(e); tp == "" {
		return nil
	}
	return &fakeSpan{f: f, id: e.ID()}
}

type fakeSpan struct {
	f  *fakeTracer
	id string
}

func (s *fakeSpan) Header() (string, string) { return "span-of-" + s.id, "" }

func (s *fakeSpan) End(attempts int, err error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	r := strconv.Itoa(attempts) + ":"
	if err != nil {
		r += err.Error()
	}
	s.f.ended[s.id] = r
}

// traceSink records, per Write, the trace context the sink would send for
// each event; fail decides per event id and attempt.
type traceSink struct {
	sent     [][]string
	attempts map[string]int
	fail     func(id string, attempt int) error
}

func (s *traceSink) Open(context.Context) error  { return nil }
func (s *traceSink) Close(context.Context) error { return nil }

func (s *traceSink) Write(ctx context.Context, evs []*event.Event) error {
	l := tracectx.FromContext(ctx)
	var sent []string
	be := ferry.NewBatchError()
	for i, e := range evs {
		tp, _ := l.For(i, e)
		sent = append(sent, e.ID()+"="+tp)
		s.attempts[e.ID()]++
		if s.fail != nil {
			if err := s.fail(e.ID(), s.attempts[e.ID()]); err != nil {
				be.Fail(i, err)
			}
		}
	}
	s.sent = append(s.sent, sent)
	if be.Len() > 0 {
		return be
	}
	return nil
}

// worker returns the sink worker of a runtime with one sink and tracer.
func worker(tb testing.TB, sink ferry.Sink, tracer Tracer) *sinkWorker {
	tb.Helper()
	st, err := state.Open(tb.TempDir(), state.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	eng, _ := transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"s"}})
	rt, err := New(Config{Store: st, Engine: eng, Tracer: tracer,
		Sources: []SourceSpec{{Name: "src", Source: &scriptSource{}}},
		Sinks:   []SinkSpec{{Name: "s", Sink: sink, Retry: RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}}}})
	if err != nil {
		tb.Fatal(err)
	}
	return rt.sinks["s"]
}

// attempts builds a batch of n events; every other one carries a
// traceparent. Their batch never settles (no tracker is needed).
func attempts(n int) []attempt {
	bs := &batchState{}
	bs.pending.Store(1 << 30)
	d := &delivery{batch: bs, unresolved: n}
	out := make([]attempt, n)
	for i := range out {
		e := event.New()
		e.SetID("e" + strconv.Itoa(i))
		e.SetSource("/t")
		e.SetType("t")
		if i%2 == 0 {
			e.SetExtension("traceparent", testTraceparent)
		}
		out[i] = attempt{entry: &entry{event: &e}, d: d}
	}
	return out
}

// deliverAll starts the spans of batch and delivers it, retrying its
// held-back keys, until every event is settled.
func deliverAll(ctx context.Context, w *sinkWorker, batch []attempt) error {
	for i := range batch {
		batch[i].key = ferry.OrderingKey(batch[i].event)
	}
	w.startSpans(ctx, batch)
	for len(batch) > 0 {
		if err := w.deliver(ctx, batch); err != nil {
			return err
		}
		due, _ := w.held.nextDue()
		time.Sleep(time.Until(due))
		batch = w.held.takeDue(time.Now(), 0, nil, 1000)
	}
	return nil
}

func TestDeliverySpansFollowRetriesAndDeadLetters(t *testing.T) {
	tr := &fakeTracer{ended: map[string]string{}}
	sink := &traceSink{attempts: map[string]int{}, fail: func(id string, attempt int) error {
		switch {
		case id == "e2":
			return ferry.Permanent(errors.New("rejected"))
		case id == "e0" && attempt == 1:
			return errors.New("busy")
		}
		return nil
	}}
	w := worker(t, sink, tr)
	if err := deliverAll(context.Background(), w, attempts(4)); err != nil {
		t.Fatalf("deliver = %v", err)
	}
	// Write 1 has all four; traced events get their span's context, the
	// others none. Write 2 retries e0 alone, with its same span.
	want := [][]string{{"e0=span-of-e0", "e1=", "e2=span-of-e2", "e3="}, {"e0=span-of-e0"}}
	if len(sink.sent) != 2 || joined(sink.sent[0]) != joined(want[0]) || joined(sink.sent[1]) != joined(want[1]) {
		t.Fatalf("sent %v, want %v", sink.sent, want)
	}
	if len(tr.ended) != 2 || tr.ended["e0"] != "2:" || tr.ended["e2"] != "1:permanent: rejected" {
		t.Fatalf("spans ended %v", tr.ended)
	}
}

func TestUntracedEventsCarryTheirOwnTraceparent(t *testing.T) {
	sink := &traceSink{attempts: map[string]int{}}
	w := worker(t, sink, nil)
	if err := deliverAll(context.Background(), w, attempts(2)); err != nil {
		t.Fatalf("deliver = %v", err)
	}
	if got := joined(sink.sent[0]); got != "e0="+testTraceparent+" e1=" {
		t.Fatalf("sent %s", got)
	}
}

// TestTracingOffAddsNoAllocationPerEvent: with no tracer, delivering 1000
// events (half of them traced) allocates the same small constant as with
// none traced.
func TestTracingOffAddsNoAllocationPerEvent(t *testing.T) {
	w := worker(t, nopSink{}, nil)
	batch := attempts(1000)
	allocs := testing.AllocsPerRun(20, func() {
		for i := range batch {
			batch[i].tries = 0
		}
		_ = w.deliver(context.Background(), batch)
	})
	if allocs > 2 {
		t.Fatalf("%.0f allocations per 1000-event delivery with tracing off", allocs)
	}
}

type nopSink struct{}

func (nopSink) Open(context.Context) error                  { return nil }
func (nopSink) Close(context.Context) error                 { return nil }
func (nopSink) Write(context.Context, []*event.Event) error { return nil }

func joined(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// BenchmarkDeliverTracingOff: one 1000-event Write through a sink worker
// without a tracer (half the events carry a traceparent).
func BenchmarkDeliverTracingOff(b *testing.B) {
	w := worker(b, nopSink{}, nil)
	batch := attempts(1000)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			batch[i].tries = 0
		}
		_ = w.deliver(context.Background(), batch)
	}
}
