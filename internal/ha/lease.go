// Package ha elects one leader among Ferry replicas that run the same
// configuration: the leader streams, the others wait as standbys and take
// over when the leader dies or loses its lease.
//
// Two leases exist: a MySQL named lock (GET_LOCK) on the source's server,
// the default, and a Kubernetes coordination.k8s.io/v1 Lease. Either way a
// leader that can no longer prove it holds the lease must stop streaming at
// once; checkpoint writes are fenced as well (see state.MySQLOptions), so a
// deposed leader cannot move the shared checkpoint.
package ha

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrLost means the lease held since Acquire was lost (or could not be
	// renewed in time): another replica may be leading now.
	ErrLost = errors.New("ha lease lost")
	// ErrNotHeld means an operation needs the lease and this replica does
	// not hold it.
	ErrNotHeld = errors.New("ha lease not held")
)

// Lease is leadership among replicas.
//
// Lifecycle: Acquire blocks until this replica leads (nil) or ctx ends
// (ctx's error); while standing by it retries through outages of the lock
// server, logging them. Keep then renews the lease until ctx ends (nil) or
// the lease is lost (an error wrapping ErrLost); the caller must stop
// leading as soon as Keep returns. After Keep, Release gives the lease up so
// a standby takes over at once (it is lost anyway when the process dies);
// Acquire may be called again after Keep returned. Close releases every
// resource; no method may be called after it. Acquire, Keep and Release are
// called from one goroutine; Name and Fence may be called from any.
//
// Fence is the lease's delivery deadline: Acquire begins a term on it, each
// successful check in Keep extends it, a loss (or a deadline passed without
// a successful check) ends it before Keep returns, and Release ends it
// before giving the lease up. Whatever delivers on the leader's behalf
// holds it (see Fence.Hold).
type Lease interface {
	Acquire(ctx context.Context) error
	Keep(ctx context.Context) error
	Release(ctx context.Context) error
	Close() error
	Fence() *Fence
	// Name describes the lease for logs, e.g. `mysql lock "ferry-db"`.
	Name() string
}

// checkEvery runs check every interval, each run bounded by the interval,
// until ctx ends (nil) or check returns an error (the lease is lost). A
// check cut short by ctx ending is not a loss: the process is stopping.
func checkEvery(ctx context.Context, interval time.Duration, check func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
