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
	running atomic.Bool
	sources map[string]*SourceStats
	sinks   map[string]*SinkStats
	mu      sync.Mutex
}

// SourceStats count one source's changes.
type SourceStats struct {
	Read         atomic.Uint64 // changes read
	Dropped      atomic.Uint64 // changes no rule matched and no default sink took
	RuleFailures atomic.Uint64 // changes dead-lettered by a failing rule

	mu           sync.Mutex
	checkpoint   ferry.Position
	checkpointAt time.Time
}

// SinkStats count one sink's deliveries.
type SinkStats struct {
	Delivered    atomic.Uint64 // events acknowledged
	Retries      atomic.Uint64 // event attempts that failed transiently
	DeadLettered atomic.Uint64 // events given up on
	Writes       atomic.Uint64
	WriteNanos   atomic.Uint64
}

func newStats() *Stats {
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
		s.sinks[name] = &SinkStats{}
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
// is moving changes.
func (s *Stats) Running() bool { return s.running.Load() }

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
	body := transform.AppendSample(nil, c)
	letter := state.DeadLetter{Time: time.Now().UTC(), Source: source, Rule: rule, EventID: c.ID,
		Event: json.RawMessage(body), Error: cause.Error(), Attempts: 1}
	return r.cfg.Store.PutDeadLetters(ctx, []state.DeadLetter{letter})
}
