package pipeline

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// replaySource hands out prepared batches, then waits like a streaming
// source: the benchmark measures the pipeline, not building changes.
type replaySource struct {
	batches []ferry.Batch
	next    int
}

func (s *replaySource) Open(context.Context, ferry.Position) error { return nil }
func (s *replaySource) Close(context.Context) error                { return nil }
func (s *replaySource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.next == len(s.batches) {
		<-ctx.Done()
		return ferry.Batch{}, ctx.Err()
	}
	s.next++
	return s.batches[s.next-1], nil
}

// countSink acknowledges everything and signals when want events arrived.
type countSink struct {
	n, want atomic.Int64
	done    chan struct{}
}

func (s *countSink) Open(context.Context) error  { return nil }
func (s *countSink) Close(context.Context) error { return nil }
func (s *countSink) Write(_ context.Context, evs []*event.Event) error {
	if s.n.Add(int64(len(evs))) == s.want.Load() {
		close(s.done)
	}
	return nil
}

// benchmarkPipeline runs b.N row changes, per to a batch (one transaction),
// from a source through the default mapping to a sink that acknowledges
// at once, with the production checkpoint interval; one op is one change.
func benchmarkPipeline(b *testing.B, per int) {
	batches := make([]ferry.Batch, 0, b.N/per+1)
	for n := 0; n < b.N; {
		bt := ferry.Batch{Checkpoint: ferry.Position(strconv.Itoa(n))}
		for range min(per, b.N-n) {
			bt.Changes = append(bt.Changes, ferry.Change{
				ID: strconv.Itoa(n), Op: ferry.OpCreate, Source: "src", DB: "shop", Table: "orders",
				Key:   ferry.Row{Columns: []string{"id"}, Values: []any{int64(n)}},
				After: ferry.Row{Columns: []string{"id", "customer", "qty", "price", "created"}, Values: []any{int64(n), "customer-" + strconv.Itoa(n), int64(n % 100), "12.34", "2026-12-02 16:00:00.123456"}},
				Time:  time.Unix(1764691200, 0),
			})
			n++
		}
		batches = append(batches, bt)
	}
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	sink := &countSink{done: make(chan struct{})}
	sink.want.Store(int64(b.N))
	eng, err := transform.New(transform.Options{TypePrefix: "com.example", DefaultTo: []string{"out"}})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := New(Config{Store: st, Engine: eng, Sources: []SourceSpec{{Name: "src", Source: &replaySource{batches: batches}}},
		Sinks: []SinkSpec{{Name: "out", Sink: sink}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { done <- rt.Run(ctx) }()
	select {
	case <-sink.done:
	case err := <-done:
		b.Fatalf("pipeline stopped early: %v", err)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelineSingleRowTx is W2's shape: one change per transaction.
func BenchmarkPipelineSingleRowTx(b *testing.B) { benchmarkPipeline(b, 1) }

// BenchmarkPipelineBulkTx is W1's shape: 1000-row statements.
func BenchmarkPipelineBulkTx(b *testing.B) { benchmarkPipeline(b, 1000) }
