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
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	return p
}

// delay is exponential backoff with full jitter in its upper half, never
// shorter than what the destination asked for with Retry-After (on the
// error, or on any retried event of a *ferry.BatchError).
func (p RetryPolicy) delay(round int, err error, retried []error) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < round && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	for _, e := range append(retried, err) {
		if after, ok := ferry.RetryDelay(e); ok && after > d {
			d = after
		}
	}
	return d
}
