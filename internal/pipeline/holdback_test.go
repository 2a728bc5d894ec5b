package pipeline

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// TestFailingKeyHoldsBackOnlyItsOwnKey: an event that fails forever holds
// back the later events of its key and nothing else; the checkpoint stays
// before it.
func TestFailingKeyHoldsBackOnlyItsOwnKey(t *testing.T) {
	src := &scriptSource{batches: 50, per: 10, keys: 10}
	sink := &recordSink{fail: func(e *event.Event, _ int) error {
		if e.ID() == "13" {
			return errors.New("503 service unavailable")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 451 }); err != nil {
		t.Fatal(err)
	}
	for _, id := range sink.ids() {
		if n, _ := strconv.Atoi(id); n >= 13 && n%10 == 3 {
			t.Fatalf("event %s of the failing key overtook event 13", id)
		}
	}
	if cp := f.checkpoint(t); cp != "1" {
		t.Fatalf("checkpoint = %q, want 1 (batch 2 holds the failing event)", cp)
	}
}

// TestFlakySinkDeliversEverythingOnceInKeyOrder: a sink failing events at
// random (seeded) loses nothing, duplicates nothing and keeps key order.
func TestFlakySinkDeliversEverythingOnceInKeyOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var mu sync.Mutex
	src := &scriptSource{batches: 100, per: 20, keys: 13}
	sink := &recordSink{fail: func(*event.Event, int) error {
		mu.Lock()
		defer mu.Unlock()
		switch rng.IntN(10) {
		case 0:
			return errors.New("503")
		case 1:
			return ferry.NotAttempted("x")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	if err := f.runUntil(t, func() bool { return f.checkpoint(t) == "100" }); err != nil {
		t.Fatal(err)
	}
	last := map[int]int{}
	seen := map[string]bool{}
	for _, id := range sink.ids() {
		n, _ := strconv.Atoi(id)
		if prev, ok := last[n%13]; ok && prev > n {
			t.Fatalf("key %d: event %d after %d", n%13, n, prev)
		}
		if seen[id] {
			t.Fatalf("event %s delivered twice", id)
		}
		last[n%13], seen[id] = n, true
	}
	if len(seen) != 2000 {
		t.Fatalf("delivered %d events, want 2000", len(seen))
	}
}

// TestBackoffBelongsToTheKeyAndResetsOnProgress checks the hold-back's
// arithmetic: failures count per key, and progress resets them.
func TestBackoffBelongsToTheKeyAndResetsOnProgress(t *testing.T) {
	h := newHoldBack()
	var asked []int
	delay := func(failures int, _ error) time.Duration { asked = append(asked, failures); return time.Second }
	now := time.Unix(0, 0)
	a := attempt{key: "a"}
	fail := func(key string, progress bool) {
		h.settle(key, &keyOutcome{retry: []attempt{a}, failed: true, progress: progress, err: errors.New("x")}, now, delay)
		h.held -= len(h.keys[key].waiting) // the test re-sends the same attempt
		h.keys[key].waiting = nil
	}
	fail("a", false)
	fail("a", false)
	fail("b", false)
	fail("a", true) // an earlier event of a went through this time
	if want := []int{1, 2, 1, 1}; !slices.Equal(asked, want) {
		t.Fatalf("delay asked for failures %v, want %v", asked, want)
	}
	if !h.admit(attempt{key: "b"}) || h.admit(attempt{key: "c"}) {
		t.Fatal("admit: a held key must queue, a free key must not")
	}
	if got := h.takeDue(now.Add(time.Second), 0, nil, 10); len(got) != 1 || got[0].key != "b" {
		t.Fatalf("takeDue = %v, want b's queued event", got)
	}
}

// TestOutageStallsTheSinkNotEachKey: while every event fails, the worker
// pauses as a whole instead of probing once per held key.
func TestOutageStallsTheSinkNotEachKey(t *testing.T) {
	src := &scriptSource{batches: 20, per: 50, keys: 1000}
	var writes int
	var mu sync.Mutex
	sink := &recordSink{fail: func(*event.Event, int) error { return errors.New("connection refused") }}
	sink.onWrite = func() { mu.Lock(); writes++; mu.Unlock() }
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) {
		c.Sinks[0].Retry = RetryPolicy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := f.rt.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 1000 held keys probing on their own schedule would make hundreds of
	// Writes; a stalled sink makes one per pause (>= 10ms after the first).
	if writes > 70 {
		t.Fatalf("%d Writes in 600ms of outage", writes)
	}
}

// TestFlowingDelayIsFineAndBounded: a key failing while the sink makes
// progress retries after a fraction of the initial backoff and never waits
// longer than twice it, however often it failed; a stalled sink's keys back
// off exponentially up to MaxBackoff.
func TestFlowingDelayIsFineAndBounded(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second}.WithDefaults()
	for range 200 {
		if d := flowingDelay(p)(1, nil); d < 12*time.Millisecond || d > 25*time.Millisecond {
			t.Fatalf("flowingDelay(1) = %v, want 12.5ms-25ms", d)
		}
		for n := 2; n < 40; n++ {
			if d := flowingDelay(p)(n, nil); d > 200*time.Millisecond {
				t.Fatalf("flowingDelay(%d) = %v, want at most 200ms", n, d)
			}
		}
		if d := p.Delay(10, nil); d < 15*time.Second {
			t.Fatalf("delay(10) = %v, want at least 15s", d)
		}
	}
	asked := ferry.RetryAfter(errors.New("503"), 3*time.Second)
	if d := flowingDelay(p)(1, asked); d != 3*time.Second {
		t.Fatalf("flowingDelay with Retry-After 3s = %v, want 3s", d)
	}
}
