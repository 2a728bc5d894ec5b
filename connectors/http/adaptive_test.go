package httpsink

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// clean is a window of n requests in parallel, all answered in rtt.
func clean(n int, rtt time.Duration) window {
	return window{lanes: n, answered: n, rtt: time.Duration(n) * rtt}
}

// TestAIMDDecreasesOnPushbackAndClimbsBack: push-back multiplies the limit
// by 0.9 (never below 1); a Write that used the whole limit without
// push-back adds one, up to the configured concurrency.
func TestAIMDDecreasesOnPushbackAndClimbsBack(t *testing.T) {
	c := newAIMD(20)
	if got := c.observe(clean(20, time.Millisecond)); got != 20 {
		t.Fatalf("a clean window at the maximum gave %d, want 20", got)
	}
	var got []int
	for range 4 {
		got = append(got, c.observe(window{lanes: c.current(), answered: 5, pushback: 1, rtt: 5 * time.Millisecond}))
	}
	if want := []int{18, 16, 14, 12}; !slices.Equal(got, want) {
		t.Fatalf("limits after push-back %v, want %v", got, want)
	}
	for range 40 {
		c.observe(window{lanes: 1, pushback: 1})
	}
	if c.current() != 1 {
		t.Fatalf("limit after 40 push-backs %d, want 1", c.current())
	}
	got = got[:0]
	for range 3 {
		got = append(got, c.observe(clean(c.current(), time.Millisecond)))
	}
	if want := []int{2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("limits climbing back %v, want %v", got, want)
	}
	for range 100 {
		c.observe(clean(c.current(), time.Millisecond))
	}
	if c.current() != 20 {
		t.Fatalf("limit after 100 clean windows %d, want the maximum 20", c.current())
	}
}

// TestAIMDGrowsOnlyWhenTheLimitWasUsed: a Write with fewer lanes than the
// limit says nothing about a higher one.
func TestAIMDGrowsOnlyWhenTheLimitWasUsed(t *testing.T) {
	c := newAIMD(10)
	c.observe(window{lanes: 5, pushback: 1, answered: 5, rtt: 5 * time.Millisecond}) // 9
	for range 5 {
		c.observe(clean(3, time.Millisecond))
	}
	if c.current() != 9 {
		t.Fatalf("limit after Writes of 3 lanes %d, want 9", c.current())
	}
}

// capacity is an endpoint in the AIMD's terms: a Write with more lanes
// than it takes is pushed back.
func capacity(c *aimd, takes int) int {
	if lanes := c.current(); lanes > takes {
		return c.observe(window{lanes: lanes, answered: takes, pushback: lanes - takes, rtt: time.Duration(takes) * time.Millisecond})
	}
	return c.observe(clean(c.current(), time.Millisecond))
}

// TestAIMDProbesAPushedBackLimitLessOften: against an endpoint that takes
// 6, plain AIMD would try 7 every other Write; the limit waits twice as
// long each time 7 is pushed back again, so over 300 Writes the endpoint
// sees at most a handful of probes after the first ones, and the limit
// sits at 6 in between.
func TestAIMDProbesAPushedBackLimitLessOften(t *testing.T) {
	c := newAIMD(32)
	var probes, atSix int
	for i := range 300 {
		before := c.current()
		capacity(c, 6)
		if i >= 100 {
			if before > 6 {
				probes++
			}
			if before == 6 {
				atSix++
			}
		}
	}
	if probes == 0 || probes > 8 {
		t.Fatalf("%d probes above the endpoint's 6 in Writes 100-300, want 1-8 (waits of up to %d Writes)", probes, maxProbeWait)
	}
	if atSix < 180 {
		t.Fatalf("the limit was 6 in %d of Writes 100-300, want at least 180", atSix)
	}
}

// TestAIMDFindsCapacityTheEndpointGained: once settled below an endpoint
// that took 6, the limit climbs to 12 when the endpoint takes 12, within a
// probe wait and a few Writes; and after a collapse to 1 it climbs one per
// Write up to where it was pushed back.
func TestAIMDFindsCapacityTheEndpointGained(t *testing.T) {
	c := newAIMD(32)
	for range 300 {
		capacity(c, 6)
	}
	writes := 0
	for ; c.current() < 12 && writes < 200; writes++ {
		capacity(c, 12)
	}
	if c.current() < 12 || writes > maxProbeWait+12 {
		t.Fatalf("limit %d after %d Writes to an endpoint taking 12, want 12 within %d", c.current(), writes, maxProbeWait+12)
	}
	for c.current() > 1 {
		capacity(c, 0)
	}
	var got []int
	for range 5 {
		got = append(got, capacity(c, 12))
	}
	if want := []int{2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("limits climbing back after a collapse %v, want %v", got, want)
	}
}

// TestAIMDReadsRisingResponseTimeAsPushback: once the moving average has
// a few windows, a mean response time clearly above it (the endpoint
// queues) decreases the limit; steady or slightly noisy ones do not.
func TestAIMDReadsRisingResponseTimeAsPushback(t *testing.T) {
	c := newAIMD(10)
	for _, ms := range []int{10, 11, 10, 9, 10, 11} {
		if got := c.observe(clean(10, time.Duration(ms)*time.Millisecond)); got != 10 {
			t.Fatalf("steady response times (%dms) gave limit %d, want 10", ms, got)
		}
	}
	if got := c.observe(clean(10, 20*time.Millisecond)); got != 9 {
		t.Fatalf("response time doubling gave limit %d, want 9", got)
	}
}

// throttler answers 429 to any request beyond its first max in flight, as
// a rate-limiting gateway does, and records the ids it accepted.
type throttler struct {
	max       int64
	inFlight  atomic.Int64
	throttled atomic.Int64
	mu        sync.Mutex
	accepted  map[string]int
}

func (h *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer h.inFlight.Add(-1)
	if h.inFlight.Add(1) > h.max {
		h.throttled.Add(1)
		http.Error(w, "too many requests in flight", http.StatusTooManyRequests)
		return
	}
	time.Sleep(time.Millisecond) // the work: keeps requests in flight together
	h.mu.Lock()
	h.accepted[r.Header.Get("Ce-Id")]++
	h.mu.Unlock()
}

// TestAdaptiveConcurrencyConvergesBelowTheEndpointsLimit: against a real
// HTTP server that throttles above 6 concurrent requests, the limit comes
// down from 32 and settles around 6 (a Write's lanes do not all reach the
// server at the same instant, so it may probe a little above, but its
// median is at most 7 and at least 4), the endpoint
// then rarely throttles (plain AIMD, probing 7 after every clean Write,
// had 157-232 of the last 1,200 events' requests throttled here without
// the race detector, against the bound of 120), and every event is
// delivered once, none refused for good (nothing would be dead-lettered).
func TestAdaptiveConcurrencyConvergesBelowTheEndpointsLimit(t *testing.T) {
	const n, writes, per, settled = 6, 30, 120, 10
	h := &throttler{max: n, accepted: map[string]int{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	s, _ := newSink(t, srv.URL, func(c *Config) { c.Concurrency, c.AdaptiveConcurrency = 32, true })
	events := conntest.Events(writes*per, writes*per)
	var limits []int
	var throttledBefore int64
	for w := range writes {
		if w == writes-settled {
			throttledBefore = h.throttled.Load()
		}
		pending := events[w*per : (w+1)*per]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 100 {
				t.Fatalf("write %d: %d events still failing after 100 attempts", w, len(pending))
			}
			err := s.Write(context.Background(), pending)
			pending = stillFailing(t, pending, err)
		}
		limits = append(limits, s.Concurrency())
	}
	late := h.throttled.Load() - throttledBefore
	t.Logf("limit after each batch %v; %d requests throttled, %d in the last %d batches", limits, h.throttled.Load(), late, settled)
	if h.throttled.Load() == 0 {
		t.Fatal("the endpoint never throttled: the test tested nothing")
	}
	tail := limits[writes-settled:]
	for _, l := range tail {
		if l > n+3 {
			t.Fatalf("limit %d in the last batches %v; the endpoint takes %d", l, tail, n)
		}
	}
	// Where the limit settles is its median: AIMD saws between the limit
	// where the endpoint pushes back and a tenth below, and where it pushes
	// back depends on how many lanes reach it at the same instant, which
	// scheduling decides (on a loaded machine lanes drift apart, and a
	// Write at n+2 may see no 429, so the sawtooth's top and the mean of
	// a few batches rise without anything wrong). A limit that stays above
	// n+1, or collapses well below n, moves the median.
	sorted := slices.Sorted(slices.Values(tail))
	if lo, hi := sorted[(settled-1)/2], sorted[settled/2]; hi > n+1 || lo < n-2 {
		t.Fatalf("limits of the last batches %v settle at %d-%d; the endpoint takes %d", tail, lo, hi, n)
	}
	if late > settled*per/10 {
		t.Fatalf("%d requests throttled in the last %d batches of %d events: the limit did not settle", late, settled, per)
	}
	for _, e := range events {
		if h.accepted[e.ID()] != 1 {
			t.Fatalf("event %s accepted %d times, want once", e.ID(), h.accepted[e.ID()])
		}
	}
}

// stillFailing returns the events of a Write that failed, failing the test
// on a permanent failure (a dead letter).
func stillFailing(t *testing.T, sent []*event.Event, err error) []*event.Event {
	t.Helper()
	if err == nil {
		return nil
	}
	var be *ferry.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a *ferry.BatchError", err)
	}
	var next []*event.Event
	for i, e := range sent {
		if f := be.Failed(i); f != nil {
			if ferry.IsPermanent(f) {
				t.Fatalf("event %s failed permanently: %v", e.ID(), f)
			}
			next = append(next, e)
		}
	}
	return next
}
