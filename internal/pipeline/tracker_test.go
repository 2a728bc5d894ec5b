package pipeline

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// finiteSource is a scriptSource that ends with ErrEndOfInput after its
// batches.
type finiteSource struct{ *scriptSource }

func (s finiteSource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.next >= s.batches {
		return ferry.Batch{}, ferry.ErrEndOfInput
	}
	return s.scriptSource.Read(ctx)
}

// TestFiniteSourceEndsWithEveryCheckpoint: batches are released on the
// goroutine that settled them (two sink workers race to release, one
// finding the other releasing), yet every batch is released in read order
// and, once the source ended, the run returns by itself with the last
// checkpoint saved: the committer is woken for what it must do.
func TestFiniteSourceEndsWithEveryCheckpoint(t *testing.T) {
	for round := range 20 {
		src := finiteSource{&scriptSource{batches: 200, per: 1 + round%3, keys: 5}}
		a, b := &recordSink{}, &recordSink{delay: time.Duration(round%2) * 50 * time.Microsecond}
		f := newFixture(t, src, map[string]ferry.Sink{"a": a, "b": b}, func(c *Config) { c.CheckpointInterval = time.Hour })
		done := make(chan error, 1)
		go func() { done <- f.rt.Run(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: the run did not end after its finite source", round)
		}
		want := 200 * src.per
		for name, s := range map[string]*recordSink{"a": a, "b": b} {
			ids := s.ids()
			if len(ids) != want {
				t.Fatalf("round %d: sink %s got %d events, want %d", round, name, len(ids), want)
			}
			for i, id := range ids {
				if id != strconv.Itoa(i) {
					t.Fatalf("round %d: sink %s event %d has id %s: order broken", round, name, i, id)
				}
			}
		}
		if cp := f.checkpoint(t); cp != "200" {
			t.Fatalf("round %d: checkpoint = %q, want 200 (the last batch's, saved at the end)", round, cp)
		}
	}
}
