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
	// transient and permanent are the configured status overrides.
	transient, permanent map[int]bool
	// adaptive is the concurrency limit with adaptive_concurrency, nil
	// otherwise; win gathers what the current Write saw for it.
	adaptive *aimd
	win      windowCounter
	// signer signs each request (sign), tokens authorizes it (oauth2);
	// nil when not configured.
	signer *signer
	tokens *tokenCache
	// endpoint is the parsed url; shape evaluates the request block (nil
	// without one); limits is the rate limit (nil without one).
	endpoint *url.URL
	shape    *shaper
	limits   *limiters
	// certAsked is set once an endpoint asked for a client certificate
	// (see noteCertificateRequests).
	certAsked *atomic.Bool
}

var _ ferry.Sink = (*Sink)(nil)

// New validates cfg, loads its TLS files and returns the sink. It does not
// contact the endpoint. log may be nil; it is expected to name the sink
// already (the application's carries sink=NAME).
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if cfg == nil {
		return nil, fmt.Errorf("http sink %s: no configuration", name)
	}
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	certAsked := new(atomic.Bool)
	tlsCfg = noteCertificateRequests(tlsCfg, certAsked)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil { // Validate parsed it already
		return nil, fmt.Errorf("http sink %s: parse url: %w", name, err)
	}
	target := redactURL(u)
	shape, errs := cfg.Request.compile()
	if len(errs) > 0 { // Validate compiled them already
		return nil, fmt.Errorf("http sink %s: %w", name, errs[0])
	}
	s := &Sink{
		name:      name,
		cfg:       *cfg,
		method:    strings.ToUpper(cfg.Method),
		target:    target,
		headers:   make(http.Header, len(cfg.Headers)+1),
		client:    newClient(tlsCfg, cfg.Concurrency),
		log:       log.With("url", target), // the caller's log names the sink
		certAsked: certAsked,
	}
	s.endpoint, s.shape, s.limits = u, shape, newLimiters(cfg.RateLimit)
	s.transient, s.permanent = codeSet(cfg.TransientStatuses), codeSet(cfg.PermanentStatuses)
	if cfg.AdaptiveConcurrency {
		s.adaptive = newAIMD(cfg.Concurrency)
	}
	if err := s.setupAuth(cfg, tlsCfg); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
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

func codeSet(codes []int) map[int]bool {
	set := make(map[int]bool, len(codes))
	for _, c := range codes {
		set[c] = true
	}
	return set
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
	if s.tokens != nil {
		s.tokens.close()
	}
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
	keys := make([]string, len(events))
	for i, e := range events {
		keys[i] = ferry.OrderingKey(e)
	}
	lanes := s.partition(keys, s.Concurrency())
	failed := make([]error, len(events))
	s.win.reset()
	if len(lanes) == 1 {
		s.sendLane(ctx, events, keys, lanes[0], failed)
	} else {
		var wg sync.WaitGroup
		for _, lane := range lanes {
			wg.Go(func() { s.sendLane(ctx, events, keys, lane, failed) })
		}
		wg.Wait()
	}
	if s.adaptive != nil && ctx.Err() == nil {
		limit := s.adaptive.observe(s.win.window(len(lanes)))
		s.log.Debug("adaptive concurrency", "limit", limit, "pushback", s.win.pushback.Load())
	}
	return s.result(ctx, failed)
}

// Concurrency returns how many requests the next Write runs in parallel at
// most: the configured concurrency, or the adaptive limit. Safe from any
// goroutine (metrics read it).
func (s *Sink) Concurrency() int {
	if s.adaptive != nil {
		return s.adaptive.current()
	}
	return s.cfg.Concurrency
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

// partition returns the non-empty lanes, at most limit, each the indexes of
// its events in batch order. Events with the same ordering key share a lane.
func (s *Sink) partition(keys []string, limit int) [][]int {
	n := min(limit, len(keys))
	lanes := make([][]int, n)
	for i, k := range keys {
		l := laneOf(k, n)
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

// sendLane sends a lane's events in order. When a request fails, the later
// events of its keys are not sent (ferry.NotAttempted), so none overtakes an
// earlier one of its key when the pipeline retries; the lane's other keys go
// on. A batch refused as too large (413) is split in halves down to single
// events, so only an event too large alone fails.
func (s *Sink) sendLane(ctx context.Context, events []*event.Event, keys []string, lane []int, failed []error) {
	var blocked map[string]string // ordering key -> id of its failed event
	limit := s.cfg.BatchMaxEvents
	for len(lane) > 0 {
		n, err := s.sendNext(ctx, events, lane, limit)
		if err != nil && n > 1 && isTooLarge(err) {
			limit = max(1, n/2)
			continue
		}
		sent := lane[:n]
		lane = lane[n:]
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			for _, i := range append(sent, lane...) {
				failed[i] = err
			}
			return
		}
		if blocked == nil {
			blocked = map[string]string{}
		}
		for _, i := range sent {
			failed[i] = err
			if _, ok := blocked[keys[i]]; !ok {
				blocked[keys[i]] = events[i].ID()
			}
		}
		rest := lane[:0:0]
		for _, i := range lane {
			if first, ok := blocked[keys[i]]; ok {
				failed[i] = ferry.NotAttempted(first)
			} else {
				rest = append(rest, i)
			}
		}
		lane = rest
	}
}
