package pipeline

import (
	"context"
	"strconv"
	"sync"
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

// stampSource is a trickleSource that records when it handed out each
// batch.
type stampSource struct {
	trickleSource
	mu   sync.Mutex
	read []time.Time
}

func (s *stampSource) Read(ctx context.Context) (ferry.Batch, error) {
	b, err := s.trickleSource.Read(ctx)
	if err == nil {
		s.mu.Lock()
		s.read = append(s.read, time.Now())
		s.mu.Unlock()
	}
	return b, err
}

// TestSinkLingerSkipsSparseChanges: changes further apart than the linger
// (the first one, and one arriving well after the last Write) are written
// at once, not held for the linger: lingering only pays where deliveries
// are frequent, and would add its whole length to a lone change's latency.
func TestSinkLingerSkipsSparseChanges(t *testing.T) {
	const batches, linger = 2, time.Second
	src := &stampSource{trickleSource: trickleSource{scriptSource: &scriptSource{batches: batches, per: 1, keys: 1}, gap: 1500 * time.Millisecond}}
	var mu sync.Mutex
	var wrote []time.Time
	sink := &recordSink{onWrite: func() { mu.Lock(); wrote = append(wrote, time.Now()); mu.Unlock() }}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) { c.SinkLinger = linger })
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == batches && f.checkpoint(t) == strconv.Itoa(batches) }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(wrote) != batches {
		t.Fatalf("%d Writes for %d batches %v apart; want one each", len(wrote), batches, src.gap)
	}
	for i := range wrote {
		// A held change would be written a whole linger after it was read.
		if d := wrote[i].Sub(src.read[i]); d >= linger/2 {
			t.Errorf("batch %d written %v after it was read, with deliveries %v apart and a %v linger: it was held", i, d, src.gap, linger)
		}
	}
}
