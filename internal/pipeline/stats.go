package pipeline

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// Stats are the live counters of a Runtime, safe for concurrent reads.
type Stats struct {
	running atomic.Int32 // runtimes running with these counters
	sources map[string]*SourceStats
	sinks   map[string]*SinkStats
	mu      sync.Mutex
}

// SourceStats count one source's changes.
type SourceStats struct {
	Read         atomic.Uint64 // changes read
	Dropped      atomic.Uint64 // changes no rule matched and no default sink took
	RuleFailures atomic.Uint64 // changes dead-lettered by a failing rule
	Released     atomic.Uint64 // changes settled: delivered, dead-lettered or dropped
	InFlight     atomic.Int64  // changes read and not yet released

	mu           sync.Mutex
	checkpoint   ferry.Position
	checkpointAt time.Time
}

// SinkStats count one sink's deliveries.
type SinkStats struct {
	Delivered    atomic.Uint64 // events acknowledged
	Retries      atomic.Uint64 // event attempts that failed transiently
	DeadLettered atomic.Uint64 // events given up on
	Failures     atomic.Uint64 // Writes that failed, wholly or in part
	Writes       atomic.Uint64
	WriteNanos   atomic.Uint64
	Buffered     atomic.Int64 // events routed to the sink and not yet settled
	// Concurrency is how many requests the sink runs in parallel, for
	// sinks that say (ConcurrencyReporter); 0 otherwise.
	Concurrency atomic.Int64
	// RateLimited is set for sinks with a rate limit (RateLimitReporter):
	// RateLimitWaits requests waited for their turn, RateLimitWaitNanos in
	// total.
	RateLimited        atomic.Bool
	RateLimitWaits     atomic.Int64
	RateLimitWaitNanos atomic.Int64
	// Latency is the time from a change's commit (a request's receipt) to
	// the sink's acknowledgement of its event.
	Latency Histogram

	mu        sync.Mutex
	reachable bool
	lastError string
	errorAt   time.Time
	health    Health
}

// Health is what the sink's held-back keys and dead letters say.
type Health struct {
	// FailingKeys are ordering keys whose head event keeps failing
	// transiently; Held counts the events waiting behind them (heads
	// included). FailingSince is when the oldest of them first failed.
	FailingKeys  int
	Held         int
	FailingSince time.Time
	// DeadLetterAt is when the sink last dead-lettered an event, and
	// DeadLetterError why.
	DeadLetterAt    time.Time
	DeadLetterError string
}

// Health returns the sink's current health.
func (s *SinkStats) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *SinkStats) observeHeld(keys, held int, since time.Time) {
	s.mu.Lock()
	s.health.FailingKeys, s.health.Held, s.health.FailingSince = keys, held, since
	s.mu.Unlock()
}

func (s *SinkStats) observeDeadLetter(at time.Time, err error) {
	s.mu.Lock()
	s.health.DeadLetterAt, s.health.DeadLetterError = at, err.Error()
	s.mu.Unlock()
}

// Reachability is what the last write attempt told about a sink.
type Reachability struct {
	// Reachable is false when the last Write failed without the sink
	// accepting or rejecting any event of it (the destination could not be
	// reached or answered with a transient error for everything); a sink
	// nothing was written to yet counts as reachable.
	Reachable bool
	// LastError is the error of the last failed Write, also after the sink
	// recovered; ErrorAt is when it happened.
	LastError string
	ErrorAt   time.Time
}

// Reachability returns what the last write attempt told.
func (s *SinkStats) Reachability() Reachability {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Reachability{Reachable: s.reachable, LastError: s.lastError, ErrorAt: s.errorAt}
}

// observeOutcome records a Write's outcome; reachable says whether the
// destination took part (accepted or refused events for good).
func (s *SinkStats) observeOutcome(err error, reachable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reachable = reachable
	if err != nil {
		s.lastError, s.errorAt = err.Error(), time.Now()
	}
}

// InFlight returns the changes read and not yet released, over all sources.
func (s *Stats) InFlight() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, st := range s.sources {
		n += st.InFlight.Load()
	}
	return n
}

// NewStats returns counters for Config.Stats: runtimes given the same
// Stats add up into them (an HA replica's leader and webhook pipelines).
func NewStats() *Stats {
	return &Stats{sources: map[string]*SourceStats{}, sinks: map[string]*SinkStats{}}
}

func (s *Stats) source(name string) *SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources[name] == nil {
		s.sources[name] = &SourceStats{}
	}
	return s.sources[name]
}

func (s *Stats) sink(name string) *SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sinks[name] == nil {
		s.sinks[name] = &SinkStats{reachable: true}
	}
	return s.sinks[name]
}

func (s *SourceStats) setCheckpoint(p ferry.Position, at time.Time) {
	s.mu.Lock()
	s.checkpoint, s.checkpointAt = p, at
	s.mu.Unlock()
}

// Checkpoint returns the last persisted position and when it was saved.
func (s *SourceStats) Checkpoint() (ferry.Position, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoint, s.checkpointAt
}

func (s *SinkStats) observeWrite(d time.Duration) {
	s.Writes.Add(1)
	s.WriteNanos.Add(uint64(d))
}

// Running reports whether every source and sink is open and the pipeline
// is moving changes (some pipeline, when several share these counters).
func (s *Stats) Running() bool { return s.running.Load() > 0 }

// SourceNames returns the sources with counters, sorted.
func (s *Stats) SourceNames() []string { return s.names(true) }

// SinkNames returns the sinks with counters, sorted.
func (s *Stats) SinkNames() []string { return s.names(false) }

func (s *Stats) names(sources bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if sources {
		for n := range s.sources {
			out = append(out, n)
		}
	} else {
		for n := range s.sinks {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Source returns the counters of a source (creating them if unknown).
func (s *Stats) Source(name string) *SourceStats { return s.source(name) }

// Sink returns the counters of a sink (creating them if unknown).
func (s *Stats) Sink(name string) *SinkStats { return s.sink(name) }

// deadLetterChange stores a change a rule failed on in its sample form,
// which `ferry transform test` reads, so the failure can be reproduced.
func (r *Runtime) deadLetterChange(ctx context.Context, source, rule string, c *ferry.Change, cause error) error {
	if err := r.checkFence(ctx); err != nil {
		return err // a deposed leader stores none: its successor decides
	}
	body := transform.AppendSample(nil, c)
	letter := state.DeadLetter{Time: time.Now().UTC(), Source: source, Rule: rule, EventID: c.ID,
		Event: json.RawMessage(body), Error: r.cfg.redact(cause.Error()), Attempts: 1}
	return r.cfg.Store.PutDeadLetters(ctx, []state.DeadLetter{letter})
}
