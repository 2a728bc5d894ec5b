package pipeline

import (
	"math/rand/v2"
	"time"

	"github.com/ferry-cdc/ferry"
)

// RetryPolicy bounds how a sink's transient failures are retried.
type RetryPolicy struct {
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAttempts dead-letters an event after that many failed attempts;
	// 0 retries transient failures forever, so an outage alone never
	// dead-letters anything.
	MaxAttempts int
	// MaxRetryAfter caps the delay a destination can ask for with
	// Retry-After; default 1 minute.
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = time.Minute
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	return p
}

// delay is exponential backoff over the failed attempts since the last
// progress, with full jitter in its upper half, never shorter than what the
// destination asked for with Retry-After (capped at MaxRetryAfter).
func (p RetryPolicy) delay(failures int, err error) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	if after, ok := ferry.RetryDelay(err); ok && after > d {
		d = min(after, p.MaxRetryAfter)
	}
	return d
}

// flowingDelay is the backoff of a key that failed in a Write in which other
// keys got through: the destination is up and the failure was the key's bad
// luck (or its own fault), not an outage. It starts at a quarter of the
// initial backoff, so that a flaky destination's failed keys ride one of the
// next Writes instead of leaving a tail of rounds each waiting a full
// backoff, and stops growing at twice the initial backoff, so that a key
// that always fails costs a bounded retry rate without being parked for
// seconds. Retry-After is honoured as in delay.
func (p RetryPolicy) flowingDelay(failures int, err error) time.Duration {
	q := p
	q.InitialBackoff = max(p.InitialBackoff/4, time.Millisecond)
	q.MaxBackoff = min(p.MaxBackoff, 2*p.InitialBackoff)
	return q.delay(failures, err)
}
