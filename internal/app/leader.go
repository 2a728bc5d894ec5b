package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferry-cdc/ferry/internal/ha"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/retry"
	"github.com/ferry-cdc/ferry/internal/state"
)

// lead waits for the lease, streams while holding it, and goes back to
// waiting when it is lost. Losing the lease is not a reason to exit: the
// process stays a ready standby (restarting it would only add the
// orchestrator's back-off to the next takeover).
func (s *supervisor) lead(ctx context.Context) error {
	lease := s.shared.lease
	for {
		s.setRole(RoleStandby)
		s.log.Info("ha: waiting for the lease", "lease", lease.Name())
		waited := time.Now()
		if err := lease.Acquire(ctx); err != nil {
			return nil // ctx ended
		}
		fence := lease.Fence()
		startIn := time.Until(fence.Starts())
		s.log.Info("ha: holding the lease; streaming", "lease", lease.Name(), "waited", time.Since(waited).Round(time.Millisecond),
			"first_delivery_in", startIn.Round(time.Millisecond).String())
		// Leader once deliveries may start: the predecessor's deadline has
		// passed by then, so two replicas never both report leading.
		term := fence.Term()
		promote := time.AfterFunc(startIn, func() { s.setRoleWhile(term, RoleLeader) })
		leadCtx, stop := context.WithCancelCause(ctx)
		unwatch := s.watchTerm(lease, stop)
		// The lease is renewed until the pipeline has stopped, through the
		// drain of a clean shutdown: the fence would cut it short otherwise.
		keepCtx, stopKeep := context.WithCancel(context.WithoutCancel(ctx))
		kept := make(chan error, 1)
		go func() { kept <- lease.Keep(keepCtx) }()
		err := s.streamAfterTakeover(leadCtx)
		stop(nil)
		stopKeep()
		keepErr := <-kept
		lost := ha.Lost(term)
		promote.Stop()
		unwatch()
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		relErr := lease.Release(rctx)
		cancel()
		if relErr != nil {
			s.log.Warn("ha: release the lease", "error", relErr)
		}
		s.setRole(RoleStandby)
		if ctx.Err() != nil || !(lost || keepErr != nil || isFenced(err)) {
			return err
		}
		s.log.Info("ha: pipeline stopped after the lease loss; standing by", "lease", lease.Name(), "error", errors.Join(keepErr, err))
	}
}

// watchTerm reports the end of the lease's current term the moment it
// happens, before anything is stopped: role, ferry_ha_leader and /readyz
// switch to standby, one line says why and what comes next, and stop ends
// the leading context (the fence has already cut deliveries off). A term
// ended by Release is not reported. The returned func stops watching.
func (s *supervisor) watchTerm(lease ha.Lease, stop context.CancelCauseFunc) func() bool {
	term := lease.Fence().Term()
	return context.AfterFunc(term, func() {
		if !ha.Lost(term) {
			return
		}
		s.setRole(RoleStandby)
		s.log.Error("ha: lost the lease; stopped streaming and standing by: in-flight events are abandoned, not acknowledged, and the new leader delivers them again",
			"lease", lease.Name(), "source", s.current().HA.Source, "error", context.Cause(term))
		stop(context.Cause(term))
	})
}

// isFenced reports whether err says this replica may no longer deliver or
// write checkpoints.
func isFenced(err error) bool {
	return errors.Is(err, state.ErrFenced) || errors.Is(err, pipeline.ErrFenced) || errors.Is(err, ha.ErrLost)
}

// streamAfterTakeover streams while leading. Right after a takeover the
// previous leader may still be closing its connections (a deposed leader
// stops delivering at its deadline but closes its binlog connection after
// that; a frozen one only once it runs again), and a MariaDB server
// refuses a second replica with the same server_id meanwhile; so a failure
// within that window is retried instead of ending the process.
func (s *supervisor) streamAfterTakeover(ctx context.Context) error {
	cfg := s.current()
	renew := cfg.HA.RenewInterval
	until := time.Now().Add(cfg.Pipeline.ShutdownTimeout + 3*renew)
	b := retry.New(retry.Every(renew), retry.Until(until))
	for {
		err := s.stream(ctx, kindLeased)
		if err == nil || ctx.Err() != nil || isFenced(err) || b.Exhausted() {
			return err
		}
		wait := b.Next(err)
		s.log.Warn("ha: streaming failed right after the takeover; the previous leader may still be closing its connections; retrying",
			"error", err, "retry_in", wait.String(), "retry_until", until.Format(time.RFC3339))
		if b.Sleep(ctx, wait) != nil {
			return nil
		}
	}
}

// roleState is the process's HA role, read by the admin endpoints.
type roleState struct {
	mu   sync.Mutex // also orders the ferry_ha_leader updates
	role string
}

func (r *roleState) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.role
}

func (s *supervisor) setRole(role string) { s.setRoleWhile(nil, role) }

// setRoleWhile sets the role and ferry_ha_leader, unless term (when not
// nil) has ended: a promotion racing with a loss loses.
func (s *supervisor) setRoleWhile(term context.Context, role string) {
	s.role.mu.Lock()
	defer s.role.mu.Unlock()
	if term != nil && term.Err() != nil {
		return
	}
	s.role.role = role
	cfg := s.current()
	for _, name := range cfg.SourceNames() {
		if kindLeased.runs(cfg.Sources[name]) { // webhook sources run on every replica
			s.metrics.SetLeader(name, role == RoleLeader)
		}
	}
}
