package httpsink

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ferry-cdc/ferry"
)

// RateLimitConfig is the `rate_limit` key.
type RateLimitConfig struct {
	// RequestsPerSecond bounds the requests sent to each endpoint (the
	// scheme, host and port of the request's URL, so request.url spreading
	// events over hosts gives each host this rate); 0: no limit. A request
	// over the rate waits for its turn instead of failing.
	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// Burst is how many requests an endpoint may get at once after a quiet
	// spell, above the rate.
	Burst int `yaml:"burst" ferry:"default=1"`
}

func (r *RateLimitConfig) validate() []error {
	var errs []error
	if r.RequestsPerSecond < 0 {
		errs = append(errs, ferry.Invalid("rate_limit.requests_per_second", "must not be negative (0: no limit), not %v", r.RequestsPerSecond))
	}
	if r.Burst < 1 {
		errs = append(errs, ferry.Invalid("rate_limit.burst", "must be at least 1, not %d", r.Burst))
	}
	return errs
}

// maxIdleLimiters is how many endpoints' limiters are kept before the idle
// ones (full buckets, equal to new ones) are dropped.
const maxIdleLimiters = 1024

// limiters holds a token bucket per endpoint. The lanes of a Write share
// it, so the rate holds whatever the concurrency; a request waits before
// its timeout starts and before its response time is measured, so waiting
// for the rate is neither a timeout nor, for adaptive concurrency, a slow
// endpoint.
type limiters struct {
	limit rate.Limit
	burst int
	// now and sleep are the clock; tests replace them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu sync.Mutex
	m  map[string]*rate.Limiter

	waits  atomic.Int64 // requests that waited for their turn
	waited atomic.Int64 // nanoseconds they waited, in total
}

// newLimiters returns the limiters of cfg, nil without a rate.
func newLimiters(cfg RateLimitConfig) *limiters {
	if cfg.RequestsPerSecond <= 0 {
		return nil
	}
	return &limiters{limit: rate.Limit(cfg.RequestsPerSecond), burst: max(1, cfg.Burst),
		now: time.Now, sleep: sleepCtx, m: map[string]*rate.Limiter{}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endpointKey is scheme://host:port, the host lower-cased and the port
// explicit, so that https://A and https://a:443 share a limit.
func endpointKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// wait takes a turn for a request to u, waiting for it while ctx allows.
// When the turn comes after ctx's deadline it fails at once (transient),
// so the Write returns in time. A nil limiters never waits.
func (l *limiters) wait(ctx context.Context, u *url.URL) error {
	if l == nil {
		return nil
	}
	key := endpointKey(u)
	now := l.now()
	r := l.get(key, now).ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(now.Add(d)) {
		r.CancelAt(now)
		return fmt.Errorf("rate limit of %s: the next turn is in %v, after the write's deadline", key, d.Round(time.Millisecond))
	}
	l.waits.Add(1)
	l.waited.Add(int64(d))
	if err := l.sleep(ctx, d); err != nil {
		r.CancelAt(l.now()) // give the turn back to the other lanes
		return fmt.Errorf("wait for the rate limit of %s: %w", key, err)
	}
	return nil
}

// get returns key's limiter, dropping idle ones when there are many.
func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lim, ok := l.m[key]; ok {
		return lim
	}
	if len(l.m) >= maxIdleLimiters {
		for k, lim := range l.m {
			if lim.TokensAt(now) >= float64(l.burst) {
				delete(l.m, k)
			}
		}
	}
	lim := rate.NewLimiter(l.limit, l.burst)
	l.m[key] = lim
	return lim
}

// RateLimited returns how many requests waited for the rate limit and for
// how long in total, since the sink was built; ok is false without a
// rate_limit. Safe from any goroutine (the pipeline exports it as
// ferry_sink_rate_limit_waits_total and _wait_seconds_total).
func (s *Sink) RateLimited() (waits int64, waited time.Duration, ok bool) {
	if s.limits == nil {
		return 0, 0, false
	}
	return s.limits.waits.Load(), time.Duration(s.limits.waited.Load()), true
}
