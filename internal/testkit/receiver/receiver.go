// Package receiver is a CloudEvents HTTP endpoint for tests and benchmarks.
// It understands binary, structured and batch requests, records every event
// it accepts, and can be told to fail, throttle or slow down, at runtime.
package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Receiver is an http.Handler. The zero value is not usable; call New.
type Receiver struct {
	mu       sync.Mutex
	events   []event.Event
	requests []*http.Request // headers of accepted requests, bodies consumed
	changed  chan struct{}

	count    atomic.Int64
	discard  atomic.Bool
	outage   atomic.Bool
	delay    atomic.Int64 // nanoseconds per request
	failNext atomic.Int64
	failCode atomic.Int64
	retryHdr atomic.Value // string
	reject   atomic.Value // func(event.Event) int
}

// New returns an empty receiver.
func New() *Receiver {
	r := &Receiver{changed: make(chan struct{})}
	r.retryHdr.Store("")
	r.reject.Store((func(event.Event) int)(nil))
	return r
}

// Start serves r on a loopback test server until the test ends.
func Start(t testing.TB, r *Receiver) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

// SetDiscard makes the receiver only count events (benchmarks).
func (r *Receiver) SetDiscard(on bool) { r.discard.Store(on) }

// SetOutage makes every request fail with 503 while on.
func (r *Receiver) SetOutage(on bool) { r.outage.Store(on) }

// SetDelay delays every request.
func (r *Receiver) SetDelay(d time.Duration) { r.delay.Store(int64(d)) }

// FailNext fails the next n requests with status, adding Retry-After when
// retryAfter is non-empty.
func (r *Receiver) FailNext(n int, status int, retryAfter string) {
	r.failCode.Store(int64(status))
	r.retryHdr.Store(retryAfter)
	r.failNext.Store(int64(n))
}

// Reject answers the given status (when non-zero) to requests holding an
// event the predicate picks, e.g. 400 for a poison event.
func (r *Receiver) Reject(f func(event.Event) int) { r.reject.Store(f) }

// Count returns the number of accepted events.
func (r *Receiver) Count() int { return int(r.count.Load()) }

// Events returns a copy of the accepted events in arrival order.
func (r *Receiver) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Requests returns the accepted requests (headers only).
func (r *Receiver) Requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.requests...)
}

// WaitFor blocks until at least n events were accepted or ctx ends.
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
			return fmt.Errorf("received %d of %d events: %w", r.Count(), n, ctx.Err())
		}
	}
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet && req.URL.Path == "/count" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"count":%d}`, r.Count())
		return
	}
	if d := time.Duration(r.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	if r.outage.Load() {
		http.Error(w, "outage", http.StatusServiceUnavailable)
		return
	}
	if r.failNext.Add(-1) >= 0 {
		if h := r.retryHdr.Load().(string); h != "" {
			w.Header().Set("Retry-After", h)
		}
		http.Error(w, "injected failure", int(r.failCode.Load()))
		return
	}
	events, err := parse(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f := r.reject.Load().(func(event.Event) int); f != nil {
		for _, e := range events {
			if code := f(e); code != 0 {
				http.Error(w, "rejected event "+e.ID(), code)
				return
			}
		}
	}
	r.accept(req, events)
	w.WriteHeader(http.StatusOK)
}

func (r *Receiver) accept(req *http.Request, events []event.Event) {
	r.count.Add(int64(len(events)))
	r.mu.Lock()
	if !r.discard.Load() {
		r.events = append(r.events, events...)
		r.requests = append(r.requests, &http.Request{Method: req.Method, Header: req.Header.Clone(), URL: req.URL})
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func parse(req *http.Request) ([]event.Event, error) {
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt == "application/cloudevents-batch+json" {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		var events []event.Event
		if err := json.Unmarshal(body, &events); err != nil {
			return nil, fmt.Errorf("batch body: %w", err)
		}
		return events, nil
	}
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer msg.Finish(nil)
	e, err := binding.ToEvent(req.Context(), msg)
	if err != nil {
		return nil, fmt.Errorf("not a CloudEvent: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("invalid CloudEvent: %w", err)
	}
	return []event.Event{*e}, nil
}
