package httpsink

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/pipeline"
)

// fakeClock stands still: every turn a limiter gives is in the future by
// exactly what its reservation math says, and sleeping only records.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	slept  []time.Duration
	result error // what sleep returns
}

func (c *fakeClock) install(l *limiters) {
	c.now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
	l.sleep = func(_ context.Context, d time.Duration) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.slept = append(c.slept, d)
		return c.result
	}
}

func (c *fakeClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.slept)
	slices.Sort(out)
	return out
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLimiterTurns(t *testing.T) {
	l := newLimiters(RateLimitConfig{RequestsPerSecond: 10, Burst: 2})
	var clock fakeClock
	clock.install(l)
	ctx := context.Background()
	// Five requests at once to one endpoint (spelled three ways), two to
	// another: the burst goes at once, the rest every 100 ms.
	for _, u := range []string{"https://crm.internal/a", "https://CRM.internal:443/b", "https://crm.internal/c?x=1",
		"https://crm.internal/d", "https://crm.internal/e", "http://crm.internal/f", "http://crm.internal:80/g"} {
		if err := l.wait(ctx, mustURL(t, u)); err != nil {
			t.Fatal(err)
		}
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	if got := clock.sleeps(); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v (http:// is another endpoint, within its burst)", got, want)
	}
	if l.waits.Load() != 3 || time.Duration(l.waited.Load()) != 600*time.Millisecond {
		t.Errorf("counted %d waits, %v", l.waits.Load(), time.Duration(l.waited.Load()))
	}

	// A turn after the Write's deadline fails at once and is given back.
	dctx, cancel := context.WithDeadline(ctx, clock.now.Add(50*time.Millisecond))
	defer cancel()
	if err := l.wait(dctx, mustURL(t, "https://crm.internal/h")); err == nil {
		t.Fatal("waited past the deadline")
	}
	// A wait the context ends is given back too.
	clock.result = context.Canceled
	if err := l.wait(ctx, mustURL(t, "https://crm.internal/i")); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait = %v, want context.Canceled", err)
	}
	clock.result = nil
	if err := l.wait(ctx, mustURL(t, "https://crm.internal/j")); err != nil {
		t.Fatal(err)
	}
	got := clock.sleeps()
	if last := got[len(got)-1]; last != 400*time.Millisecond {
		t.Errorf("the turn after two given back is in %v, want 400ms (waits %v)", last, got)
	}
}

func TestLimiterDropsIdleEndpoints(t *testing.T) {
	l := newLimiters(RateLimitConfig{RequestsPerSecond: 1, Burst: 1})
	var clock fakeClock
	clock.install(l)
	for i := range maxIdleLimiters {
		_ = l.wait(context.Background(), &url.URL{Scheme: "http", Host: "h" + strconv.Itoa(i)})
	}
	clock.now = clock.now.Add(time.Hour) // every bucket refills
	_ = l.wait(context.Background(), mustURL(t, "http://new/"))
	if len(l.m) != 1 {
		t.Errorf("%d limiters kept, want the idle ones dropped", len(l.m))
	}
}

// TestRateLimitedWrite runs a Write over four lanes to two endpoints: each
// endpoint gets its own turns whatever the lanes, and Write reports them.
func TestRateLimitedWrite(t *testing.T) {
	var a, b bodyServer
	aURL, bURL := a.start(t), b.start(t)
	s, _ := newSink(t, aURL, func(c *Config) {
		c.Concurrency, c.AdaptiveConcurrency = 4, true
		c.Request = RequestConfig{URL: `data.to == "a" ? "` + aURL + `" : "` + bURL + `"`, CloudEventsHeaders: true}
		c.RateLimit = RateLimitConfig{RequestsPerSecond: 4, Burst: 1}
	})
	var clock fakeClock
	clock.install(s.limits)
	var events []*event.Event
	for i, to := range []string{"a", "b", "a", "a", "b", "a", "b"} {
		events = append(events, crmEvent("e-"+strconv.Itoa(i), "k-"+strconv.Itoa(i), `{"to":"`+to+`"}`))
	}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	const q = 250 * time.Millisecond
	want := []time.Duration{q, q, 2 * q, 2 * q, 3 * q} // a: 4 requests, b: 3
	if got := clock.sleeps(); !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	if waits, waited, ok := s.RateLimited(); !ok || waits != 5 || waited != 9*q {
		t.Errorf("RateLimited = %d, %v", waits, waited)
	}
	if len(a.requests()) != 4 || len(b.requests()) != 3 {
		t.Errorf("a got %d, b %d requests", len(a.requests()), len(b.requests()))
	}
	if s.Concurrency() != 4 {
		t.Errorf("adaptive concurrency %d after a Write without push-back, want 4", s.Concurrency())
	}
}

// The pipeline exports what the sink reports through these interfaces.
var (
	_ pipeline.RateLimitReporter   = (*Sink)(nil)
	_ pipeline.ConcurrencyReporter = (*Sink)(nil)
)

// BenchmarkShapedRequest measures building and sending one shaped request
// (url, header, JSON body) to a local endpoint.
func BenchmarkShapedRequest(b *testing.B) {
	rs := bodyServer{discard: true}
	srv := rs.start(b)
	cfg := DefaultConfig()
	cfg.URL, cfg.Concurrency = srv, 1
	cfg.Request = RequestConfig{URL: `"` + srv + `/customers/" + event.subject`, Headers: map[string]string{"X-Customer": "string(data.id)"},
		Body: `{"customerId": data.id, "op": event.type, "name": data.name}`, CloudEventsHeaders: true}
	s, err := New("bench", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	events := []*event.Event{crmEvent("e-1", "c-1", `{"id":42,"name":"Zoë","tags":["a","b"]}`)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShapeBuild measures evaluating a request block (url, one
// header, a JSON body) for one event, without sending it: the CPU the
// expressions add per event.
func BenchmarkShapeBuild(b *testing.B) {
	req := RequestConfig{URL: `"https://crm.internal/customers/" + event.subject`, Headers: map[string]string{"X-Customer": "string(data.id)"},
		Body: `{"customerId": data.id, "op": event.type, "name": data.name}`, CloudEventsHeaders: true}
	sh, errs := req.compile()
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	e := crmEvent("e-1", "c-1", `{"id":42,"name":"Zoë","tags":["a","b"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sh.build(e); err != nil {
			b.Fatal(err)
		}
	}
}
