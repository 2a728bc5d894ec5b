// Package receiver is a CloudEvents HTTP endpoint for tests and benchmarks.
//
// A Receiver understands the three modes of the CloudEvents HTTP protocol
// binding (binary, structured and batch), records every event it accepts,
// and can be programmed, at runtime and from any goroutine, to fail the next
// requests, to fail everything during an outage, to reject requests holding
// a poison event, or to answer slowly. In Discard mode it only counts, for
// benchmarks.
//
//	r := receiver.New()
//	url := r.Start(t)         // httptest server, closed when the test ends
//	r.FailNext(2, 503, "1")   // the next two requests get 503 with Retry-After: 1
//	... point a sink at url ...
//	err := r.WaitFor(ctx, 50)
//
// Besides CloudEvents requests (any method but GET, any path), a Receiver
// answers GET /count with {"count":N}, so a receiver running in another
// process (internal/tools/cerecv) can be polled.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Receiver is an http.Handler that accepts CloudEvents. Create it with New.
// Every method is safe for concurrent use.
type Receiver struct {
	count    atomic.Int64 // events accepted
	attempts atomic.Int64 // CloudEvents requests seen, failed ones included

	// mu guards everything below. It is never held while a request waits
	// or while a body is read.
	mu       sync.Mutex
	events   []event.Event
	paths    []string // the request path of each event in events
	requests []*http.Request
	changed  chan struct{} // closed and replaced whenever count grows
	discard  bool
	outage   bool
	delay    time.Duration
	failN    int
	failCode int
	failHdr  string // Retry-After of the FailNext answers
	match    func(event.Event) bool
	matchSt  int
	flaky    *rand.Rand // non-nil: fail one request in flakyN at random
	flakyN   int
	flakySt  int
}

// Option configures a Receiver at construction.
type Option func(*Receiver)

// WithDiscard starts the receiver in Discard mode (see SetDiscard).
func WithDiscard() Option { return func(r *Receiver) { r.discard = true } }

// WithDelay delays every answer (see SetDelay).
func WithDelay(d time.Duration) Option { return func(r *Receiver) { r.delay = d } }

// New returns a receiver that accepts everything.
func New(opts ...Option) *Receiver {
	r := &Receiver{changed: make(chan struct{})}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Start serves r on a loopback httptest server until the test ends and
// returns the server's URL with the path /events.
func (r *Receiver) Start(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL + "/events"
}

// Start is r.Start(t), for callers that prefer a function.
func Start(t testing.TB, r *Receiver) string {
	t.Helper()
	return r.Start(t)
}

// Serve serves r on ln until ctx ends, then shuts down gracefully (in-flight
// requests get up to 5 seconds) and returns nil. It returns early with the
// error if serving fails. Serve takes ownership of ln.
func (r *Receiver) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shut down receiver on %s: %w", ln.Addr(), err)
	}
	return nil
}

// SetDiscard switches Discard mode: accepted events are still parsed and
// counted, but Events and Requests do not keep them.
func (r *Receiver) SetDiscard(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.discard = on
}

// SetOutage makes every request fail with 503 (without Retry-After) while on.
func (r *Receiver) SetOutage(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outage = on
}

// SetDelay delays the answer to every request by d (0: none). A client that
// gives up earlier ends the wait.
func (r *Receiver) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// FailNext answers the next n requests with status, adding a Retry-After
// header when retryAfter is not empty. It replaces an earlier FailNext.
func (r *Receiver) FailNext(n, status int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN, r.failCode, r.failHdr = n, status, retryAfter
}

// FailRandomly answers status to one request in oneIn, picked at random
// from seed (a flaky endpoint, unlike an outage window); oneIn 0 stops it.
func (r *Receiver) FailRandomly(oneIn, status int, seed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flaky, r.flakyN, r.flakySt = nil, oneIn, status
	if oneIn > 0 {
		r.flaky = rand.New(rand.NewPCG(seed, 0))
	}
}

// FailMatching answers status to every request holding an event that match
// picks (for example 400 for a poison event); none of that request's events
// is accepted. A nil match removes the rule.
func (r *Receiver) FailMatching(match func(e event.Event) bool, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.match, r.matchSt = match, status
}

// Count returns how many events were accepted.
func (r *Receiver) Count() int { return int(r.count.Load()) }

// Attempts returns how many CloudEvents requests arrived, whatever the
// answer.
func (r *Receiver) Attempts() int { return int(r.attempts.Load()) }

// Events returns the accepted events in the order they were accepted (none
// in Discard mode).
func (r *Receiver) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Arrival is one accepted event with the path of the request that carried
// it: senders told apart by path (an HA pair, each replica with its own).
type Arrival struct {
	Path  string
	Event event.Event
}

// Arrivals returns the accepted events, in the order they were accepted,
// with their request paths (none in Discard mode).
func (r *Receiver) Arrivals() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Arrival, len(r.events))
	for i, e := range r.events {
		out[i] = Arrival{Path: r.paths[i], Event: e}
	}
	return out
}

// Requests returns the accepted requests in the order they were accepted,
// with method, URL and headers; their bodies are consumed.
func (r *Receiver) Requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.requests...)
}

// WaitFor blocks until at least n events were accepted, or ctx ends.
func (r *Receiver) WaitFor(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if r.Count() >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d events (got %d): %w", n, r.Count(), ctx.Err())
		}
	}
}
