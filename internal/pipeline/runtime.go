// Package pipeline runs sources, transforms and sinks with Ferry's delivery
// guarantees:
//
//   - at least once: a source checkpoint is persisted only after every change
//     up to it was delivered to every sink it was routed to, or dead-lettered;
//   - per-key order: each sink receives the events of an ordering key
//     (ferry.OrderingKey) in source order; a failed event holds back only the
//     later events of its key (holdBack), which are retried in order after
//     it, with a backoff of the key's own that resets on progress, while
//     every other key keeps flowing;
//   - bounded memory: at most MaxInFlight changes are between Read and
//     acknowledgement, so a slow sink slows the source down.
//
// Goroutines: per source a reader (Source.Read), a transformer and a
// committer; per sink one worker shared by all sources. Batches flow
// reader -> transformer -> sink workers; completions flow back to the
// committer of their source, which releases them strictly in read order.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// Store persists checkpoints and dead letters. *state.Store implements it.
type Store interface {
	CheckpointStore
	PutDeadLetters(ctx context.Context, letters []state.DeadLetter) error
}

// CheckpointStore persists source checkpoints (see state.Checkpoints for the
// contract). A SaveCheckpoint error stops the pipeline.
type CheckpointStore interface {
	LoadCheckpoint(ctx context.Context, source string) (state.Checkpoint, bool, error)
	SaveCheckpoint(ctx context.Context, source string, pos ferry.Position) error
}

// SourceSpec is one configured source.
type SourceSpec struct {
	Name   string // the configured name: logs, errors, dead letters
	Source ferry.Source
	// Key names the source's checkpoint and counters; default Name. A
	// backfill or replay run beside its source gets its own.
	Key string
}

// SinkSpec is one configured sink.
type SinkSpec struct {
	Name  string
	Sink  ferry.Sink
	Retry RetryPolicy
}

// Config wires a Runtime.
type Config struct {
	Sources []SourceSpec
	Sinks   []SinkSpec
	Engine  *transform.Engine
	Store   Store
	// Checkpoints, when set, keeps the source checkpoints instead of Store
	// (a table shared by HA replicas).
	Checkpoints CheckpointStore
	// MaxInFlight bounds the changes read but not yet acknowledged, per source.
	MaxInFlight int
	// MaxInFlightBytes bounds them by their size (ferry.Change.Size); a
	// batch bigger than the bound still passes, alone.
	MaxInFlightBytes int64
	// CheckpointInterval is the most often a source checkpoint is written.
	CheckpointInterval time.Duration
	// ShutdownTimeout bounds the drain after the run context is cancelled.
	ShutdownTimeout time.Duration
	// MaxSinkBatch bounds the events of one Sink.Write; default 1000.
	MaxSinkBatch int
	// SinkLinger, when positive, is how long a sink worker waits for more
	// deliveries before a Write of fewer than MaxSinkBatch events.
	SinkLinger time.Duration
	// DeadLetterSink names a sink that receives dead letters as CloudEvents
	// before (instead of) the store; what it refuses is stored.
	DeadLetterSink string
	// Capture, when set, receives every change read as one sample line
	// (transform.AppendSample), for writing rule tests from real traffic.
	Capture io.Writer
	Logger  *slog.Logger
	// Tracer, when set, traces the delivery of every event that carries a
	// trace context (see Tracer); nil traces nothing, at no cost.
	Tracer Tracer
	// Redact, when set, cleans the error text of dead letters (of the
	// configuration's secrets, which a sink's error may quote).
	Redact func(string) string
	// Fence, when set, must allow every sink Write (an HA leader's lease);
	// nil delivers unconditionally.
	Fence Fence
	// Stats, when set, receives the counters (shared with other runtimes);
	// nil: the runtime's own.
	Stats *Stats
}

// redact applies cfg.Redact, if any.
func (c *Config) redact(s string) string {
	if c.Redact == nil {
		return s
	}
	return c.Redact(s)
}

// closeTimeout bounds closing one source or sink.
const closeTimeout = 10 * time.Second

// Runtime runs a configured pipeline once.
type Runtime struct {
	cfg       Config
	captureMu sync.Mutex // serializes capture writes of several sources
	log       *slog.Logger
	sinks     map[string]*sinkWorker
	sources   []*sourceLoop
	stats     *Stats

	// spawning: extra sources started while Run runs (see Spawn)
	spawnMu    sync.Mutex
	spawnOpen  bool // Run is running and accepts spawned sources
	soft, hard context.Context
	spawnWG    sync.WaitGroup
}

// New validates cfg and builds a Runtime.
func New(cfg Config) (*Runtime, error) {
	if len(cfg.Sources) == 0 || len(cfg.Sinks) == 0 {
		return nil, errors.New("pipeline needs at least one source and one sink")
	}
	if cfg.Engine == nil || cfg.Store == nil {
		return nil, errors.New("pipeline needs a transform engine and a store")
	}
	if cfg.Checkpoints == nil {
		cfg.Checkpoints = cfg.Store
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.MaxSinkBatch <= 0 {
		cfg.MaxSinkBatch = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stats == nil {
		cfg.Stats = NewStats()
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, sinks: map[string]*sinkWorker{}, stats: cfg.Stats}
	for _, s := range cfg.Sinks {
		r.sinks[s.Name] = newSinkWorker(r, s)
	}
	for _, s := range cfg.Sources {
		r.sources = append(r.sources, newSourceLoop(r, s))
	}
	return r, nil
}

// Stats returns the live counters of the runtime.
func (r *Runtime) Stats() *Stats { return r.stats }

// Run opens every sink and source, moves changes until ctx is cancelled or a
// source fails, then drains: in-flight events get up to ShutdownTimeout to be
// delivered, the last fully acknowledged checkpoint is saved, and everything
// is closed. It returns nil after a clean shutdown or ferry.ErrEndOfInput
// sources all ending, and the first fatal error otherwise.
func (r *Runtime) Run(ctx context.Context) error {
	if err := r.openSinks(ctx); err != nil {
		return err
	}
	defer r.closeSinks()
	opened, err := r.openSources(ctx)
	defer r.closeSources(opened)
	if err != nil {
		return err
	}

	soft, cancelSoft := context.WithCancelCause(ctx)
	defer cancelSoft(nil)
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	stopTimer := context.AfterFunc(soft, func() {
		time.AfterFunc(r.cfg.ShutdownTimeout, cancelHard)
	})
	defer stopTimer()

	var fatal error
	var fatalOnce sync.Once
	fail := func(err error) {
		fatalOnce.Do(func() { fatal = err })
		cancelSoft(err)
	}

	r.stats.running.Add(1)
	defer r.stats.running.Add(-1)
	r.acceptSpawns(soft, hard)
	var sinkWG, letterWG, sourceWG sync.WaitGroup
	letters := r.sinks[r.cfg.DeadLetterSink] // nil without a dead-letter sink
	for _, w := range r.sinks {
		wg := &sinkWG
		if w == letters {
			wg = &letterWG
		}
		wg.Go(func() {
			if err := w.run(hard); err != nil {
				fail(sinkFailed(w.name, err))
				cancelHard()
			}
		})
	}
	for _, l := range r.sources {
		sourceWG.Go(func() {
			if err := l.run(soft, hard, fail); err != nil {
				fail(sourceFailed(l.name, err))
			}
		})
	}
	sourceWG.Wait()
	r.stopSpawns()
	for _, w := range r.sinks {
		if w != letters {
			close(w.in)
		}
	}
	sinkWG.Wait()
	// The dead-letter sink drains last: the others' dead letters go
	// through its worker until they are done.
	if letters != nil {
		close(letters.in)
	}
	letterWG.Wait()
	if fatal == nil && ctx.Err() == nil {
		r.log.Info("all sources reached their end")
	}
	return fatal
}

func (r *Runtime) openSinks(ctx context.Context) error {
	for _, s := range r.cfg.Sinks {
		if err := s.Sink.Open(ctx); err != nil {
			r.closeSinks()
			return sinkFailed(s.Name, fmt.Errorf("open sink %s: %w", s.Name, err))
		}
		r.sinks[s.Name].opened = true
	}
	return nil
}

func (r *Runtime) closeSinks() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, w := range r.sinks {
		if !w.opened {
			continue
		}
		w.opened = false
		if err := w.sink.Close(ctx); err != nil {
			r.log.Warn("close sink", "sink", w.name, "error", err)
		}
	}
}

func (r *Runtime) openSources(ctx context.Context) ([]*sourceLoop, error) {
	var opened []*sourceLoop
	for _, l := range r.sources {
		cp, ok, err := r.cfg.Checkpoints.LoadCheckpoint(ctx, l.key)
		if err != nil {
			return opened, err
		}
		var from ferry.Position
		if ok {
			from = cp.Position
		}
		if from, ok, err = r.resumeFrom(ctx, l, from, ok); err != nil {
			return opened, err
		}
		if err := l.src.Open(ctx, from); err != nil {
			return opened, sourceFailed(l.name, fmt.Errorf("open source %s: %w", l.name, err))
		}
		opened = append(opened, l)
		if !ok {
			if err := r.persistStart(ctx, l); err != nil {
				return opened, err
			}
		}
	}
	return opened, nil
}

// persistStart saves where a source without a checkpoint began, before
// anything is read: see ferry.StartPositioner.
func (r *Runtime) persistStart(ctx context.Context, l *sourceLoop) error {
	sp, ok := l.src.(ferry.StartPositioner)
	if !ok {
		return nil
	}
	pos := sp.StartPosition()
	if pos == nil {
		return nil
	}
	if err := r.cfg.Checkpoints.SaveCheckpoint(ctx, l.key, pos); err != nil {
		return sourceFailed(l.name, fmt.Errorf("save the start position of source %s: %w", l.name, err))
	}
	l.stats.setCheckpoint(pos, time.Now())
	l.log.Info("no checkpoint yet: saved where this first run starts")
	return nil
}

func (r *Runtime) closeSources(opened []*sourceLoop) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, l := range opened {
		if err := l.src.Close(ctx); err != nil {
			r.log.Warn("close source", "source", l.name, "error", err)
		}
	}
}
