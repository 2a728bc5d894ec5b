// Package retry is Ferry's one backoff: every reconnect loop, lease loop and
// sink retry waits what a Policy says. Delays grow exponentially (the growth
// is github.com/cenkalti/backoff/v5's) up to a cap, with jitter so that
// replicas, sources and keys that failed together do not all retry at the
// same instant, and a destination's Retry-After is honoured up to a cap of
// its own.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ferry-cdc/ferry"
)

// Policy is how failed attempts are retried: a sink's `retry:` key (its
// fields carry their configuration names), and the backoff of every
// reconnect loop.
type Policy struct {
	// InitialBackoff is the delay after the first failure; each further
	// failure doubles it. Default 100ms.
	InitialBackoff time.Duration `yaml:"initial_backoff" ferry:"default=100ms"`
	// MaxBackoff caps the doubling. Default 30s.
	MaxBackoff time.Duration `yaml:"max_backoff" ferry:"default=30s"`
	// MaxAttempts gives up after that many failed attempts (a sink
	// dead-letters the event); 0 retries transient failures forever, so an
	// outage alone never dead-letters anything.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxRetryAfter caps the delay a destination asks for with
	// Retry-After (or throttling); default 1m.
	MaxRetryAfter time.Duration `yaml:"max_retry_after" ferry:"default=1m"`
}

// Default is the policy whose values fill a Policy's zero fields: a sink's
// `retry:` defaults.
func Default() Policy { return *ferry.Defaults[Policy]() }

// Reconnect is how a source or the checkpoint table reconnects to a
// server it lost: from about a second, up to half a minute.
func Reconnect() Policy { return Policy{InitialBackoff: time.Second, MaxBackoff: 30 * time.Second} }

// Every is a constant cadence d, jittered: what a standby polling a lease,
// or a loop whose period is part of its contract, waits between attempts.
// Jitter only shortens it (to between d/2 and d), so the period stays a
// bound.
func Every(d time.Duration) Policy { return Policy{InitialBackoff: d, MaxBackoff: d} }

// WithDefaults fills the zero (or negative) fields from Default and raises
// MaxBackoff to InitialBackoff when it is below it.
func (p Policy) WithDefaults() Policy {
	d := Default()
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = d.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = d.MaxBackoff
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	p.MaxBackoff = max(p.MaxBackoff, p.InitialBackoff)
	return p
}

// Delay is the wait after the failures-th consecutive failure (1 for the
// first) that ended with err, drawn from the global random source.
func (p Policy) Delay(failures int, err error) time.Duration {
	return p.WithDefaults().delay(failures, err, nil)
}

// delay is InitialBackoff doubled per failure after the first, capped at
// MaxBackoff, then jittered into its upper half ([d/2, d]: full jitter
// would sometimes retry at once, which hammers a server that just came
// back); a Retry-After in err makes it at least that, capped at
// MaxRetryAfter. p has its defaults; r nil means the global source.
func (p Policy) delay(failures int, err error, r *rand.Rand) time.Duration {
	exp := backoff.ExponentialBackOff{InitialInterval: p.InitialBackoff, Multiplier: 2, MaxInterval: p.MaxBackoff}
	d := exp.NextBackOff()
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d = exp.NextBackOff()
	}
	half := int64(d / 2)
	var j int64
	if r != nil {
		j = r.Int64N(half + 1)
	} else {
		j = rand.Int64N(half + 1)
	}
	d = d - time.Duration(half) + time.Duration(j)
	if after, ok := ferry.RetryDelay(err); ok {
		d = max(d, min(after, p.MaxRetryAfter))
	}
	return d
}

// Permanent marks err as not worth retrying: Do returns it (unwrapped) at
// once.
func Permanent(err error) error { return backoff.Permanent(err) }

// Clock is the time a Backoff reads and waits on; tests inject their own.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff is one loop's run of attempts under a Policy. It is not safe for
// concurrent use: each loop makes its own with New.
type Backoff struct {
	policy   Policy
	deadline time.Time // zero: none
	rand     *rand.Rand
	clock    Clock
	failures int
}

// Option adjusts a Backoff.
type Option func(*Backoff)

// Until stops retrying at deadline: Do makes its last attempt then, and no
// wait runs past it. The zero time means no deadline.
func Until(deadline time.Time) Option { return func(b *Backoff) { b.deadline = deadline } }

// WithRand draws the jitter from r (tests: a seeded source).
func WithRand(r *rand.Rand) Option { return func(b *Backoff) { b.rand = r } }

// WithClock reads and waits on c instead of the real clock (tests).
func WithClock(c Clock) Option { return func(b *Backoff) { b.clock = c } }

// New starts a run of attempts under p (its zero fields take Default's).
func New(p Policy, opts ...Option) *Backoff {
	b := &Backoff{policy: p.WithDefaults(), clock: realClock{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Failures is how many failures the run has counted.
func (b *Backoff) Failures() int { return b.failures }

// Next counts a failure ending with err and returns the wait before the
// next attempt, shortened so that it ends at the deadline at the latest.
func (b *Backoff) Next(err error) time.Duration {
	b.failures++
	d := b.policy.delay(b.failures, err, b.rand)
	if !b.deadline.IsZero() {
		d = max(min(d, b.deadline.Sub(b.clock.Now())), 0)
	}
	return d
}

// Wait counts a failure ending with err and waits as Next says; it
// returns ctx's error when ctx ends first.
func (b *Backoff) Wait(ctx context.Context, err error) error {
	return b.clock.Sleep(ctx, b.Next(err))
}

// Sleep waits d on the Backoff's clock; it returns ctx's error when ctx
// ends first. Loops that log a wait before taking it pair it with Next.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error { return b.clock.Sleep(ctx, d) }

// Exhausted reports whether another attempt is out of bounds: MaxAttempts
// failures counted, or the deadline passed.
func (b *Backoff) Exhausted() bool {
	if b.policy.MaxAttempts > 0 && b.failures >= b.policy.MaxAttempts {
		return true
	}
	return !b.deadline.IsZero() && !b.clock.Now().Before(b.deadline)
}

// Notify hears of each failed attempt (numbered from 1) and the wait that
// follows it, e.g. to log it.
type Notify func(attempt int, err error, wait time.Duration)

// Do calls op until it returns nil or gives up. It gives up on an error
// marked Permanent (returned unwrapped), when ctx ends (op's error if op
// failed with ctx ended, else ctx's error while waiting), and when the run
// is exhausted (the last error: MaxAttempts attempts made, or the deadline
// passed). notify, when not nil, hears of every failure that is retried.
func (b *Backoff) Do(ctx context.Context, op func(ctx context.Context) error, notify Notify) error {
	for {
		err := op(ctx)
		if err == nil {
			return nil
		}
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			return perm.Unwrap()
		}
		if ctx.Err() != nil {
			return err
		}
		d := b.Next(err)
		if b.Exhausted() {
			return err
		}
		if notify != nil {
			notify(b.failures, err, d)
		}
		if serr := b.clock.Sleep(ctx, d); serr != nil {
			return serr
		}
	}
}
