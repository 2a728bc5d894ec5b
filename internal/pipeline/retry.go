package pipeline

import (
	"time"

	"github.com/ferry-cdc/ferry/internal/retry"
)

// RetryPolicy bounds how a sink's transient failures are retried: the
// sink's `retry:` configuration, declared once in package retry, whose
// Delay the sink worker waits (exponential, capped, jittered, Retry-After
// honoured up to MaxRetryAfter).
type RetryPolicy = retry.Policy

// flowingDelay is the backoff of a key that failed in a Write in which other
// keys got through: the destination is up and the failure was the key's bad
// luck (or its own fault), not an outage. It starts at a quarter of the
// initial backoff, so that a flaky destination's failed keys ride one of the
// next Writes instead of leaving a tail of rounds each waiting a full
// backoff, and stops growing at twice the initial backoff, so that a key
// that always fails costs a bounded retry rate without being parked for
// seconds. Retry-After is honoured as in Delay.
func flowingDelay(p RetryPolicy) func(failures int, err error) time.Duration {
	q := p
	q.InitialBackoff = max(p.InitialBackoff/4, time.Millisecond)
	q.MaxBackoff = min(p.MaxBackoff, 2*p.InitialBackoff)
	return q.Delay
}
