package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// CheckReload returns an error, at the changed key, when next changes
// something a running process cannot take over: state (where checkpoints
// and buffers live), ha, admin and log. Everything else (sources, sinks,
// rules, defaults, pipeline) is applied by a reload.
func CheckReload(cur, next *config.Config) error {
	var errs config.Errors
	for _, k := range []struct {
		path string
		a, b any
	}{
		{"state", cur.State, next.State},
		{"ha", cur.HA, next.HA},
		{"admin", cur.Admin, next.Admin},
		{"log", cur.Log, next.Log},
	} {
		if !reflect.DeepEqual(k.a, k.b) {
			errs = append(errs, next.Errorf(k.path, "cannot change while running; restart ferry to apply it"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// supervisor runs the pipeline for the life of the process: rebuilt from
// the new configuration on each reload, and, with ha, only while this
// replica holds the lease. With ha, webhook sources run in a second
// pipeline on every replica, leader or standby (see kindLocal).
type supervisor struct {
	log     *slog.Logger
	store   *state.Store // the embedded store: webhook journal, dead letters
	shared  *shared
	metrics *telemetry.Metrics
	opts    RunOptions
	role    roleState
	live    liveControl
	views   views

	mu      sync.Mutex
	cfg     *config.Config // the configuration to run
	changed chan struct{}  // closed and replaced when a reload replaces cfg
}

func newSupervisor(cfg *config.Config, store *state.Store, sh *shared, m *telemetry.Metrics, log *slog.Logger, opts RunOptions) *supervisor {
	return &supervisor{log: log, store: store, shared: sh, metrics: m, opts: opts, cfg: cfg, changed: make(chan struct{}),
		views: views{metrics: m, parts: map[kind]*running{}}}
}

// reloaded returns a channel closed at the next reload.
func (s *supervisor) reloaded() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *supervisor) current() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// watchReloads takes each configuration the caller validated; the
// pipeline picks it up (at once when streaming, at the next start when
// standing by).
func (s *supervisor) watchReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case next, ok := <-s.opts.Reload:
			if !ok {
				return
			}
			s.mu.Lock()
			prev := s.cfg
			s.cfg = next
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
			logChanges(s.log, prev, next)
			if role := s.role.get(); role != RoleSingle {
				s.setRole(role) // ferry_ha_leader for added sources
			}
		}
	}
}

// run streams until ctx ends (nil) or a fatal error.
func (s *supervisor) run(ctx context.Context) error {
	go s.watchReloads(ctx)
	if s.shared.lease == nil {
		return s.stream(ctx, kindAll)
	}
	if !hasSources(s.current(), kindLocal) {
		return s.lead(ctx)
	}
	// Both pipelines' counters add up in one view (a sink is counted once).
	s.views.stats = pipeline.NewStats()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	local := make(chan error, 1)
	go func() {
		local <- s.stream(ctx, kindLocal)
		cancel() // a local pipeline that failed ends the process
	}()
	err := s.lead(ctx)
	cancel()
	return errors.Join(err, <-local)
}

// running is one pipeline built from one configuration.
type running struct {
	cfg  *config.Config
	a    *assembly
	rt   *pipeline.Runtime
	kind kind
}

// build assembles the pipeline of cfg's sources of kind k without opening
// anything.
func (s *supervisor) build(cfg *config.Config, k kind) (*running, error) {
	a, err := assemble(cfg, s.store, s.log, s.opts.Capture)
	if err != nil {
		return nil, err
	}
	a.trace(s.opts.tracing)
	if s.shared.checkpoints != nil {
		a.pcfg.Checkpoints = s.shared.checkpoints
		a.history = s.shared.history()
	}
	if s.shared.lease != nil && k == kindLeased {
		a.pcfg.Fence = s.shared.lease.Fence()
	}
	a.pcfg.Stats = s.views.stats
	for _, name := range cfg.SourceNames() {
		if !k.runs(cfg.Sources[name]) {
			continue
		}
		if err := a.addSource(name, name, nil); err != nil {
			return nil, err
		}
	}
	if err := a.addSinks(cfg.SinkNames()); err != nil {
		return nil, err
	}
	rt, err := pipeline.New(a.pcfg)
	if err != nil {
		return nil, err
	}
	return &running{cfg: cfg, a: a, rt: rt, kind: k}, nil
}

// stream runs the pipeline until ctx ends or it fails; on a reload it
// builds the new pipeline first (a configuration that cannot be built
// leaves the old one running), then stops the old one gracefully (in-flight
// events delivered, checkpoint saved) and starts the new one, which resumes
// from that checkpoint.
func (s *supervisor) stream(ctx context.Context, k kind) error {
	cur, err := s.build(s.current(), k)
	if err != nil {
		return err
	}
	defer s.views.unbind(k)
	for {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cur.rt.Run(runCtx) }()
		s.setLive(k, &control{a: cur.a, rt: cur.rt, replays: map[string]*replayRun{}})
		s.views.bind(cur)
		next, err := s.awaitReload(ctx, cur, done)
		cancel()
		if next == nil {
			s.setLive(k, nil)
			return err
		}
		s.log.Info("reload: stopping the running pipeline (in-flight events are delivered, the checkpoint saved)", "pipeline", k.String())
		if err := <-done; err != nil {
			s.setLive(k, nil)
			return fmt.Errorf("reload: the old pipeline stopped with an error: %w", err)
		}
		s.log.Info("reload: starting the pipeline with the new configuration")
		cur = next
	}
}

// setLive hands admin requests (backfills, replays: binlog sources only)
// to c; the webhook pipeline of an ha replica takes none.
func (s *supervisor) setLive(k kind, c *control) {
	if k != kindLocal {
		s.live.set(c)
	}
}

// awaitReload waits for the running pipeline to end (nil, its error) or for
// a reload whose pipeline could be built (that pipeline).
func (s *supervisor) awaitReload(ctx context.Context, cur *running, done <-chan error) (*running, error) {
	for {
		changed := s.reloaded()
		if cfg := s.current(); cfg != cur.cfg {
			next, err := s.build(cfg, cur.kind)
			if err == nil {
				return next, nil
			}
			s.log.Error("reload: cannot build the new configuration; keeping the running one", "error", err)
			s.mu.Lock()
			s.cfg = cur.cfg
			s.mu.Unlock()
			continue
		}
		select {
		case err := <-done:
			return nil, err
		case <-changed:
		case <-ctx.Done():
			return nil, <-done
		}
	}
}

// logChanges logs what a reload adds, removes and changes.
func logChanges(log *slog.Logger, prev, next *config.Config) {
	srcAdded, srcRemoved, srcChanged := diffBlocks(prev.Sources, next.Sources, func(s *config.Source) any { return s })
	sinkAdded, sinkRemoved, sinkChanged := diffBlocks(prev.Sinks, next.Sinks, func(s *config.Sink) any { return s })
	log.Info("reload: configuration accepted",
		"sources_added", srcAdded, "sources_removed", srcRemoved, "sources_changed", srcChanged,
		"sinks_added", sinkAdded, "sinks_removed", sinkRemoved, "sinks_changed", sinkChanged,
		"rules_changed", !reflect.DeepEqual(prev.Transforms, next.Transforms),
		"defaults_changed", !reflect.DeepEqual(prev.Defaults, next.Defaults),
		"pipeline_changed", !reflect.DeepEqual(prev.Pipeline, next.Pipeline))
}

func diffBlocks[V any](prev, next map[string]V, view func(V) any) (added, removed, changed []string) {
	for _, name := range slices.Sorted(maps.Keys(next)) {
		p, ok := prev[name]
		switch {
		case !ok:
			added = append(added, name)
		case !reflect.DeepEqual(view(p), view(next[name])):
			changed = append(changed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
		}
	}
	return added, removed, changed
}

// liveControl hands admin requests to the running pipeline's control,
// which a reload replaces and a standby lacks.
type liveControl struct {
	mu sync.Mutex
	c  *control
}

var _ admin.Control = (*liveControl)(nil)

// ErrNotStreaming answers backfill and replay requests while no pipeline
// runs (a standby, or a reload in progress).
var ErrNotStreaming = errors.New("no pipeline is running here (an ha standby, or a reload in progress)")

func (l *liveControl) set(c *control) {
	l.mu.Lock()
	l.c = c
	l.mu.Unlock()
}

func (l *liveControl) get() (*control, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		return nil, ErrNotStreaming
	}
	return l.c, nil
}

func (l *liveControl) Backfill(ctx context.Context, source string, req ferry.BackfillRequest) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	return c.Backfill(ctx, source, req)
}

func (l *liveControl) Backfills() []ferry.BackfillProgress {
	if c, err := l.get(); err == nil {
		return c.Backfills()
	}
	return nil
}

func (l *liveControl) PauseBackfill(ctx context.Context, source, table string) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	return c.PauseBackfill(ctx, source, table)
}

func (l *liveControl) StartReplay(ctx context.Context, req admin.ReplayRequest) (admin.ReplayStatus, error) {
	c, err := l.get()
	if err != nil {
		return admin.ReplayStatus{}, err
	}
	return c.StartReplay(ctx, req)
}

func (l *liveControl) Replays() []admin.ReplayStatus {
	if c, err := l.get(); err == nil {
		return c.Replays()
	}
	return nil
}

func (l *liveControl) CancelReplay(id string) error {
	c, err := l.get()
	if err != nil {
		return err
	}
	return c.CancelReplay(id)
}
