package pipeline

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// mixedRules route, drop and fail changes by their number n: every fifth
// also goes to sink b, every eleventh is dropped, every thirteenth fails
// its rule (a division by zero) and is dead-lettered.
var mixedRules = []transform.Rule{
	{Name: "fail", When: `after.n % 13 == 0 && 1 / (after.n - after.n) == 0`, To: []string{"b"}},
	{Name: "drop", When: `after.n % 11 == 0`, Drop: true},
	{Name: "side", When: `after.n % 5 == 0`, To: []string{"b"}},
}

// mixedBatches are batches of the given sizes, large ones split across the
// transform workers and small ones not; every 97th change is undecodable.
func mixedBatches(sizes ...int) []ferry.Batch {
	var out []ferry.Batch
	n := 0
	for bi, size := range sizes {
		b := ferry.Batch{Checkpoint: ferry.Position(strconv.Itoa(bi + 1))}
		for range size {
			c := ferry.Change{ID: strconv.Itoa(n), Op: ferry.OpCreate, Source: "src", DB: "db", Table: "t",
				Key:   ferry.Row{Columns: []string{"k"}, Values: []any{int64(n % 7)}},
				After: ferry.Row{Columns: []string{"k", "n"}, Values: []any{int64(n % 7), int64(n)}},
				Time:  time.Unix(0, 0)}
			if n%97 == 0 {
				c.Invalid = errors.New("cannot decode")
			}
			b.Changes = append(b.Changes, c)
			n++
		}
		out = append(out, b)
	}
	return out
}

// expectedRouting is what one sequential pass of the rules over the
// batches gives: event ids per sink in order, and the dead-lettered change
// ids in order.
func expectedRouting(t *testing.T, eng *transform.Engine, batches []ferry.Batch) (map[string][]string, []string) {
	t.Helper()
	w := eng.NewWorker()
	perSink := map[string][]string{}
	var dead []string
	for _, b := range batches {
		for i := range b.Changes {
			c := &b.Changes[i]
			if c.Invalid != nil {
				dead = append(dead, c.ID)
				continue
			}
			for _, o := range w.Apply(c, nil) {
				if o.Err != nil {
					dead = append(dead, c.ID)
					continue
				}
				for _, s := range o.To {
					perSink[s] = append(perSink[s], o.Event.ID())
				}
			}
		}
	}
	return perSink, dead
}

// TestParallelTransformKeepsOrderAndFailures: batches large enough to be
// transformed on several goroutines reach every sink in exactly the order,
// with exactly the drops and dead letters, of one sequential pass, and the
// checkpoint reaches the last batch.
func TestParallelTransformKeepsOrderAndFailures(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // the split needs two workers
	}
	sizes := []int{1000, 3, 700, parallelMin, parallelMin - 1, 1, 4097}
	a, b := &recordSink{}, &recordSink{}
	var eng *transform.Engine
	f := newFixture(t, &replaySource{batches: mixedBatches(sizes...)}, map[string]ferry.Sink{"a": a, "b": b}, func(c *Config) {
		var err error
		if eng, err = transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"a"}, Rules: mixedRules}); err != nil {
			t.Fatal(err)
		}
		c.Engine = eng
	})
	want, wantDead := expectedRouting(t, eng, mixedBatches(sizes...))
	if len(want["a"]) == 0 || len(want["b"]) == 0 || len(wantDead) == 0 {
		t.Fatalf("the rules route nothing somewhere: %d to a, %d to b, %d dead", len(want["a"]), len(want["b"]), len(wantDead))
	}
	last := strconv.Itoa(len(sizes))
	if err := f.runUntil(t, func() bool { return f.checkpoint(t) == last }); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*recordSink{"a": a, "b": b} {
		if got := s.ids(); !slices.Equal(got, want[name]) {
			t.Fatalf("sink %s got %d events, want %d in the sequential order; first difference at %d", name, len(got), len(want[name]), firstDiff(got, want[name]))
		}
	}
	var dead []string
	_ = f.store.DeadLetters(context.Background(), func(d state.DeadLetter) error { dead = append(dead, d.EventID); return nil })
	if !slices.Equal(dead, wantDead) {
		t.Fatalf("dead letters %v, want %v", dead, wantDead)
	}
	if got, wantDropped := f.rt.Stats().Source("src").Dropped.Load(), uint64(dropped(eng, mixedBatches(sizes...))); got != wantDropped {
		t.Fatalf("dropped %d, want %d", got, wantDropped)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// dropped counts the decodable changes without any output.
func dropped(eng *transform.Engine, batches []ferry.Batch) int {
	w, n := eng.NewWorker(), 0
	for _, b := range batches {
		for i := range b.Changes {
			if b.Changes[i].Invalid == nil && len(w.Apply(&b.Changes[i], nil)) == 0 {
				n++
			}
		}
	}
	return n
}
