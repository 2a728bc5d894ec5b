package pipeline

import (
	"time"

	"github.com/ferry-cdc/ferry"
)

// RateLimitReporter is implemented by sinks that hold requests back for a
// rate limit (the HTTP sink's rate_limit). The sink worker reads it after
// each Write, from its own goroutine, into SinkStats.
type RateLimitReporter interface {
	// RateLimited returns how many requests waited for their turn and how
	// long they waited in total, since the sink was built; ok is false
	// when the sink has no rate limit.
	RateLimited() (waits int64, waited time.Duration, ok bool)
}

// readRateLimit copies what sink reports into s; nothing for a sink
// without a rate limit.
func (s *SinkStats) readRateLimit(sink ferry.Sink) {
	r, ok := sink.(RateLimitReporter)
	if !ok {
		return
	}
	waits, waited, limited := r.RateLimited()
	if !limited {
		return
	}
	s.RateLimitWaits.Store(waits)
	s.RateLimitWaitNanos.Store(int64(waited))
	s.RateLimited.Store(true)
}
