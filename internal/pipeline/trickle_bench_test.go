package pipeline

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// pacedSource hands out single-change batches at a steady pace, as a
// binlog does single-row transactions committed at a steady rate.
type pacedSource struct {
	gap         time.Duration
	t0          time.Time
	next, total int
}

func (s *pacedSource) Open(context.Context, ferry.Position) error { return nil }
func (s *pacedSource) Close(context.Context) error                { return nil }
func (s *pacedSource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.t0.IsZero() {
		s.t0 = time.Now()
	}
	if s.next == s.total {
		<-ctx.Done()
		return ferry.Batch{}, ctx.Err()
	}
	s.next++
	if !sleep(ctx, time.Until(s.t0.Add(time.Duration(s.next)*s.gap))) {
		return ferry.Batch{}, ctx.Err()
	}
	n := s.next
	return ferry.Batch{Checkpoint: ferry.Position(strconv.Itoa(n)), Changes: []ferry.Change{{
		ID: strconv.Itoa(n), Op: ferry.OpCreate, Source: "src", DB: "shop", Table: "orders",
		Key:   ferry.Row{Columns: []string{"id"}, Values: []any{int64(n)}},
		After: ferry.Row{Columns: []string{"id", "customer", "qty"}, Values: []any{int64(n), "customer-" + strconv.Itoa(n), int64(n % 100)}},
		Time:  time.Now(),
	}}}, nil
}

// rttSink acknowledges each Write after rtt, like a produce round trip.
type rttSink struct {
	countSink
	rtt    time.Duration
	writes atomic.Int64
}

func (s *rttSink) Write(ctx context.Context, evs []*event.Event) error {
	s.writes.Add(1)
	sleep(ctx, s.rtt)
	return s.countSink.Write(ctx, evs)
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipelineTrickle: single-row transactions at 3,000/s through the
// default mapping to a sink with a 300µs round trip; reports the process
// CPU per change (cpu-us/change) and the events per Write. Run with a
// fixed count (-benchtime 6000x: two seconds) and compare interleaved
// runs: the pace is wall clock, so ns/op says nothing.
func BenchmarkPipelineTrickle(b *testing.B) {
	for _, linger := range []time.Duration{0, time.Millisecond} {
		b.Run("linger="+linger.String(), func(b *testing.B) { benchmarkTrickle(b, linger) })
	}
}

func benchmarkTrickle(b *testing.B, linger time.Duration) {
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sink := &rttSink{countSink: countSink{done: make(chan struct{})}, rtt: 300 * time.Microsecond}
	sink.want.Store(int64(b.N))
	b.ReportAllocs()
	runPaced(b, st, sink, sink.done, time.Second/3000, linger)
	b.ReportMetric(float64(b.N)/float64(sink.writes.Load()), "events/write")
}

// runPaced runs a pipeline from a source of b.N single-row transactions,
// one every gap, to sink as "out" until done closes (the sink saw b.N
// events), and reports the process CPU per change. It returns the
// runtime, stopped, for its statistics.
func runPaced(b *testing.B, st *state.Store, sink ferry.Sink, done <-chan struct{}, gap, linger time.Duration) *Runtime {
	b.Helper()
	eng, err := transform.New(transform.Options{TypePrefix: "com.example", DefaultTo: []string{"out"}})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := New(Config{Store: st, Engine: eng, SinkLinger: linger, Sources: []SourceSpec{{Name: "src", Source: &pacedSource{gap: gap, total: b.N}}},
		Sinks: []SinkSpec{{Name: "out", Sink: sink}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	b.ResetTimer()
	cpu0 := cpuNow()
	go func() { stopped <- rt.Run(ctx) }()
	select {
	case <-done:
	case err := <-stopped:
		b.Fatalf("pipeline stopped early: %v", err)
	}
	cpu := cpuNow() - cpu0
	b.StopTimer()
	cancel()
	if err := <-stopped; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/change")
	return rt
}
