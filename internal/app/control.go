package app

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/pipeline"
)

// control performs the backfills and replays a running Ferry is asked for
// through its admin API.
type control struct {
	a  *assembly
	rt *pipeline.Runtime

	mu      sync.Mutex
	replays map[string]*replayRun
	seq     int
}

var _ admin.Control = (*control)(nil)

// replayRun is one replay the running Ferry performs.
type replayRun struct {
	status admin.ReplayStatus // State and Error guarded by control.mu
	key    string             // pipeline name
	src    ferry.Source
	tables []string // the replay's --table list (empty: all)
	cancel context.CancelFunc
}

func (c *control) backfiller(source string) (ferry.Backfiller, error) {
	src, ok := c.a.sources[source]
	if !ok {
		return nil, fmt.Errorf("%w: no source named %q (configured: %v)", admin.ErrNotFound, source, c.a.cfg.SourceNames())
	}
	bf, ok := src.(ferry.Backfiller)
	if !ok {
		return nil, ferry.Invalid("source", "source %s is of type %s, which has no tables to backfill", source, c.a.cfg.Sources[source].Type)
	}
	return bf, nil
}

func (c *control) Backfill(ctx context.Context, source string, req ferry.BackfillRequest) error {
	bf, err := c.backfiller(source)
	if err != nil {
		return err
	}
	if err := checkSinks(c.a.cfg, req.To); err != nil {
		return err
	}
	return bf.Backfill(ctx, req)
}

func (c *control) Backfills() []ferry.BackfillProgress {
	var out []ferry.BackfillProgress
	for _, name := range c.a.cfg.SourceNames() {
		if bf, ok := c.a.sources[name].(ferry.Backfiller); ok {
			out = append(out, bf.Backfills()...)
		}
	}
	return out
}

func (c *control) PauseBackfill(ctx context.Context, source, table string) error {
	bf, err := c.backfiller(source)
	if err != nil {
		return err
	}
	if err := bf.PauseBackfill(ctx, table); err != nil {
		return fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	return nil
}

// StartReplay runs a replay beside the configured sources, through the
// same rules and sinks.
func (c *control) StartReplay(_ context.Context, req admin.ReplayRequest) (admin.ReplayStatus, error) {
	r := ReplayRange{From: req.From, Until: req.Until, UntilTime: req.UntilTime, Tables: req.Tables, To: req.To}
	src, err := BuildReplaySource(c.a.cfg, req.Source, r, req.ServerID, c.a.schemaHistory(), c.a.log)
	if err != nil {
		return admin.ReplayStatus{}, err
	}
	c.mu.Lock()
	c.seq++
	id := strconv.Itoa(c.seq)
	c.mu.Unlock()
	run := &replayRun{key: req.Source + "~replay-" + id, src: src, tables: req.Tables,
		status: admin.ReplayStatus{ID: id, Source: req.Source, From: req.From, State: admin.ReplayRunning, Started: time.Now().UTC()}}
	ctx, cancel := context.WithCancel(context.Background())
	done, err := c.rt.Spawn(ctx, pipeline.SourceSpec{Name: req.Source, Key: run.key, Source: src})
	if err != nil {
		cancel()
		return admin.ReplayStatus{}, err
	}
	run.cancel = cancel
	c.mu.Lock()
	c.replays[id] = run
	c.mu.Unlock()
	go c.await(run, ctx, done)
	return c.status(run), nil
}

// await records how a replay ended.
func (c *control) await(run *replayRun, ctx context.Context, done <-chan error) {
	err := <-done
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ctx.Err() != nil:
		run.status.State = admin.ReplayCancelled
	case err != nil:
		run.status.State, run.status.Error = admin.ReplayFailed, err.Error()
	default:
		run.status.State = admin.ReplayDone
		if p, ok := run.src.(ReplayProgress); ok && c.a.store != nil {
			_, end := p.ReplayPosition()
			n, err := DropReplayedQuarantine(context.Background(), c.a.store, run.status.Source, run.tables, run.status.From, end)
			if err != nil {
				c.a.log.Warn("replay done, but the dead letters of the quarantined rows it delivered stay", "id", run.status.ID, "error", err)
			} else if n > 0 {
				c.a.log.Info("replay delivered quarantined rows: their dead letters are removed", "id", run.status.ID, "dead_letters", n)
			}
		}
	}
	c.a.log.Info("replay ended", "id", run.status.ID, "source", run.status.Source, "state", run.status.State, "error", run.status.Error)
}

func (c *control) status(run *replayRun) admin.ReplayStatus {
	c.mu.Lock()
	st := run.status
	c.mu.Unlock()
	st.Changes = c.rt.Stats().Source(run.key).Read.Load()
	if p, ok := run.src.(ReplayProgress); ok {
		st.At, st.End = p.ReplayPosition()
	}
	return st
}

func (c *control) Replays() []admin.ReplayStatus {
	c.mu.Lock()
	runs := make([]*replayRun, 0, len(c.replays))
	for i := 1; i <= c.seq; i++ {
		if r, ok := c.replays[strconv.Itoa(i)]; ok {
			runs = append(runs, r)
		}
	}
	c.mu.Unlock()
	out := make([]admin.ReplayStatus, len(runs))
	for i, r := range runs {
		out[i] = c.status(r)
	}
	return out
}

func (c *control) CancelReplay(id string) error {
	c.mu.Lock()
	run, ok := c.replays[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no replay %q", admin.ErrNotFound, id)
	}
	run.cancel()
	return nil
}
