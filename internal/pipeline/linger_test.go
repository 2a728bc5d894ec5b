package pipeline

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// trickleSource is a scriptSource whose batches arrive one every gap, like
// single-row transactions committed at a steady rate.
type trickleSource struct {
	*scriptSource
	gap time.Duration
}

func (s *trickleSource) Read(ctx context.Context) (ferry.Batch, error) {
	if !sleep(ctx, s.gap) {
		return ferry.Batch{}, ctx.Err()
	}
	return s.scriptSource.Read(ctx)
}

// TestSinkLingerSharesWrites: with pipeline.sink_linger, single-change
// batches arriving every 2 ms share Writes (without it each is its own
// Write, since the sink answers at once), and order and the checkpoint are
// those of the batches.
func TestSinkLingerSharesWrites(t *testing.T) {
	const batches = 40
	src := &trickleSource{scriptSource: &scriptSource{batches: batches, per: 1, keys: 3}, gap: 2 * time.Millisecond}
	var writes atomic.Int64
	sink := &recordSink{onWrite: func() { writes.Add(1) }}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) { c.SinkLinger = 500 * time.Millisecond })
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == batches && f.checkpoint(t) == strconv.Itoa(batches) }); err != nil {
		t.Fatal(err)
	}
	for i, id := range sink.ids() {
		if id != strconv.Itoa(i) {
			t.Fatalf("event %d has id %s: order broken", i, id)
		}
	}
	if n := writes.Load(); n > batches/4 {
		t.Fatalf("%d Writes for %d single-change batches arriving every 2ms with a 500ms linger; want at most %d", n, batches, batches/4)
	}
	t.Logf("%d batches in %d Writes", batches, writes.Load())
}
