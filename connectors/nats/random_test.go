package nats_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// TestRandomWorkload: random batches (up to more keys than one round
// publishes at once) with random events refused by the stream, retried
// until all are stored, are stored once each and in order within each
// key, and no event is stored after an earlier one of its key failed in
// the same Write.
func TestRandomWorkload(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	d := newDestination(t)
	s := d.newSink(t, []string{"binary", "structured"}[rng.IntN(2)])
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	n := 500 + rng.IntN(2500)
	events := conntest.Events(n, 1+rng.IntN(n))
	poison := map[string]bool{}
	for range rng.IntN(20) {
		poison[events[rng.IntN(n)].ID()] = true
	}
	d.failEvents(t, func(id string) bool { return poison[id] })
	pending := events
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 2 {
			d.failEvents(t, nil) // the destination recovers
		}
		if attempt > 3 {
			t.Fatalf("%d events still failing after the destination recovered", len(pending))
		}
		err := s.Write(context.Background(), pending)
		var be *ferry.BatchError
		if err != nil && !errors.As(err, &be) {
			t.Fatalf("Write = %v", err)
		}
		var retry = pending[:0:0]
		failedKey := map[string]bool{}
		for i, e := range pending {
			key := ferry.OrderingKey(e)
			if be != nil && be.Failed(i) != nil {
				if ferry.IsPermanent(be.Failed(i)) {
					t.Fatalf("event %s failed permanently: %v", e.ID(), be.Failed(i))
				}
				failedKey[key] = true
				retry = append(retry, e)
			} else if failedKey[key] {
				t.Fatalf("event %s was acknowledged after an earlier event of its key failed", e.ID())
			}
		}
		pending = retry
	}
	got := d.received(t)
	if len(got) != n {
		t.Fatalf("%d events stored, want %d", len(got), n)
	}
	seen, last := map[string]bool{}, map[string]int{}
	for _, g := range got {
		if seen[g.ID()] {
			t.Fatalf("event %s stored twice", g.ID())
		}
		seen[g.ID()] = true
		key, i := ferry.OrderingKey(&g), conntest.EventIndex(g.ID())
		if prev, ok := last[key]; ok && prev > i {
			t.Fatalf("key %s: event %d stored after event %d", key, i, prev)
		}
		last[key] = i
	}
}
