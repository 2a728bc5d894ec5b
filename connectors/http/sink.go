package httpsink

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// Sink delivers events to one HTTP endpoint. Its methods follow the
// ferry.Sink contract: Write is called by one goroutine at a time, Close
// after the last Write returned.
type Sink struct {
	name    string
	cfg     Config
	method  string
	target  string // the URL without user information and query, for logs and errors
	headers http.Header
	client  *http.Client
	log     *slog.Logger
	closed  atomic.Bool
}

var _ ferry.Sink = (*Sink)(nil)

// New validates cfg, loads its TLS files and returns the sink. It does not
// contact the endpoint. log may be nil; it is expected to name the sink
// already (the application's carries sink=NAME).
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if cfg == nil {
		return nil, fmt.Errorf("http sink %s: no configuration", name)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil { // Validate parsed it already
		return nil, fmt.Errorf("http sink %s: parse url: %w", name, err)
	}
	target := redactURL(u)
	s := &Sink{
		name:    name,
		cfg:     *cfg,
		method:  strings.ToUpper(cfg.Method),
		target:  target,
		headers: make(http.Header, len(cfg.Headers)+1),
		client:  newClient(tlsCfg, cfg.Concurrency),
		log:     log.With("url", target), // the caller's log names the sink
	}
	s.headers.Set("User-Agent", "ferry")
	for k, v := range cfg.Headers {
		s.headers.Set(k, v.Reveal())
	}
	if cfg.TLS.InsecureSkipVerify {
		s.log.Warn("tls.insecure_skip_verify is set: the endpoint's certificate is not verified")
	}
	return s, nil
}

// newClient returns a client that keeps a connection per lane alive, never
// follows redirects and has no timeout of its own (each request has one).
func newClient(tlsCfg *tls.Config, lanes int) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	transport.MaxIdleConnsPerHost = lanes
	return &http.Client{
		Transport: transport,
		// Sending an event somewhere else is the operator's decision, so
		// a redirect is answered as it is (and fails permanently).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// redactURL keeps scheme, host and path: user information and queries
// may hold credentials.
func redactURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// Open does nothing: an unreachable endpoint is a Write failure, which the
// pipeline retries, not a reason to refuse to start.
func (s *Sink) Open(context.Context) error { return nil }

// Close makes later Writes fail with ferry.ErrClosed and closes idle
// connections. Calling it again does nothing.
func (s *Sink) Close(context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	s.client.CloseIdleConnections()
	return nil
}

// Write delivers events and returns nil when every one was acknowledged, a
// *ferry.BatchError naming those that were not, or, when none was
// acknowledged because ctx ended, ctx.Err() wrapped. See the package
// documentation for lanes and error classes.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("http sink %s: write: %w", s.name, ferry.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("http sink %s: write: %w", s.name, err)
	}
	lanes := s.partition(events)
	failed := make([]error, len(events))
	if len(lanes) == 1 {
		s.sendLane(ctx, events, lanes[0], failed)
	} else {
		var wg sync.WaitGroup
		for _, lane := range lanes {
			wg.Go(func() { s.sendLane(ctx, events, lane, failed) })
		}
		wg.Wait()
	}
	return s.result(ctx, failed)
}

// result builds Write's answer from the per-event errors.
func (s *Sink) result(ctx context.Context, failed []error) error {
	be := ferry.NewBatchError()
	for i, err := range failed {
		if err != nil {
			be.Fail(i, err)
		}
	}
	switch {
	case be.Len() == 0:
		return nil
	case be.Len() == len(failed) && ctx.Err() != nil:
		return fmt.Errorf("http sink %s: write interrupted: %w", s.name, ctx.Err())
	}
	return be
}

// partition returns the non-empty lanes, each the indexes of its events in
// batch order. Events with the same ordering key share a lane.
func (s *Sink) partition(events []*event.Event) [][]int {
	n := min(s.cfg.Concurrency, len(events))
	lanes := make([][]int, n)
	for i, e := range events {
		l := laneOf(orderingKey(e), n)
		lanes[l] = append(lanes[l], i)
	}
	out := lanes[:0]
	for _, l := range lanes {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// laneOf hashes key (32-bit FNV-1a, without allocating) onto n lanes.
func laneOf(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// orderingKey is the partitionkey extension, else the subject, else the id.
func orderingKey(e *event.Event) string {
	switch v := e.Extensions()["partitionkey"].(type) {
	case nil:
	case string:
		if v != "" {
			return v
		}
	default: // the SDK keeps integer extensions as int32
		return fmt.Sprint(v)
	}
	if sub := e.Subject(); sub != "" {
		return sub
	}
	return e.ID()
}

// sendLane sends a lane's events in order. At the first failure the rest of
// the lane is failed without being sent, so no event overtakes an earlier
// one with the same key when the pipeline retries.
func (s *Sink) sendLane(ctx context.Context, events []*event.Event, lane []int, failed []error) {
	for start := 0; start < len(lane); {
		n, err := s.sendNext(ctx, events, lane[start:])
		if err == nil {
			start += n
			continue
		}
		for _, i := range lane[start : start+n] {
			failed[i] = err
		}
		held := heldBack(ctx, events[lane[start]].ID(), err)
		for _, i := range lane[start+n:] {
			failed[i] = held
		}
		return
	}
}

// heldBack is the error of an event not sent because an earlier event of
// its lane failed. It is transient whatever the cause, and keeps the
// cause's Retry-After.
func heldBack(ctx context.Context, id string, cause error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("not attempted: %w", ctx.Err())
	}
	err := fmt.Errorf("not attempted: held back to keep partition-key order, because earlier event %s in its lane failed (%v)", id, cause)
	if d, ok := ferry.RetryDelay(cause); ok {
		return ferry.RetryAfter(err, d)
	}
	return err
}
