package pipeline

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotRunning is returned by Spawn when Run is not (or no longer) running.
var ErrNotRunning = errors.New("the pipeline is not running")

// Spawn runs an extra, finite source (a replay a running Ferry performs)
// beside the configured ones, through the same rules and sinks, while Run
// runs. The source is opened without a checkpoint and its checkpoints are
// not saved: it must set none. Cancelling ctx stops it like a shutdown
// does. The returned channel receives nil once the source ended and all it
// read was delivered or dead-lettered, or the error that stopped it; then it
// is closed.
func (r *Runtime) Spawn(ctx context.Context, spec SourceSpec) (<-chan error, error) {
	r.spawnMu.Lock()
	defer r.spawnMu.Unlock()
	if !r.spawnOpen {
		return nil, ErrNotRunning
	}
	if err := spec.Source.Open(ctx, nil); err != nil {
		return nil, fmt.Errorf("open source %s: %w", spec.Name, err)
	}
	l := newSourceLoop(r, spec)
	soft, cancel := context.WithCancelCause(r.soft)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	done := make(chan error, 1)
	r.spawnWG.Go(func() {
		defer close(done)
		defer stop()
		var failed error
		err := l.run(soft, r.hard, func(err error) {
			failed = err
			cancel(err)
		})
		if err == nil {
			err = failed
		}
		if err == nil && soft.Err() != nil {
			err = context.Cause(soft)
		}
		closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancelClose()
		if cerr := spec.Source.Close(closeCtx); cerr != nil {
			l.log.Warn("close source", "error", cerr)
		}
		done <- err
	})
	return done, nil
}

// acceptSpawns opens Spawn for the contexts of the current Run.
func (r *Runtime) acceptSpawns(soft, hard context.Context) {
	r.spawnMu.Lock()
	defer r.spawnMu.Unlock()
	r.soft, r.hard, r.spawnOpen = soft, hard, true
}

// stopSpawns refuses new spawns and waits for the running ones, before the
// sink workers' inputs are closed.
func (r *Runtime) stopSpawns() {
	r.spawnMu.Lock()
	r.spawnOpen = false
	r.spawnMu.Unlock()
	r.spawnWG.Wait()
}
