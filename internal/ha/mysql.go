package ha

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferry-cdc/ferry/internal/retry"
	"github.com/ferry-cdc/ferry/internal/state"
)

// MySQLOptions configure a MySQL named-lock lease.
type MySQLOptions struct {
	// Server holds the connection settings of the lock's server (address,
	// user, password, TLS). The lease copies it and sets its own timeouts.
	Server *mysql.Config
	// Name is the lock name (at most 64 characters).
	Name string
	// RenewInterval is how often the leader checks that its lock session
	// still holds the lock, and how long a standby's GET_LOCK waits per try
	// (rounded up to whole seconds); default 1s.
	RenewInterval time.Duration
	Logger        *slog.Logger
}

// MySQLLease is a lease held with GET_LOCK on one dedicated connection, the
// lock session. The lock lives exactly as long as that session: the server
// releases it when the leader releases it, when its process dies (the TCP
// connection closes) or, on a network partition, when the session was idle
// for wait_timeout, which the lease sets to a few renew intervals (see
// WaitTimeout). The leader checks its session every renew interval and
// reports the lease lost on the first failed or slow check, earlier than the
// server can give the lock away.
//
// It also implements state.Session: fenced checkpoint writes run on the
// lock session.
type MySQLLease struct {
	opts     MySQLOptions
	db       *sql.DB // the lease's own pool; idle connections are closed, never reused
	lockWait int     // seconds one GET_LOCK waits
	waitTO   int     // the lock session's wait_timeout, seconds
	log      *slog.Logger
	fence    *Fence

	mu   sync.Mutex // serializes statements on conn
	conn *sql.Conn  // the lock session while the lock is held
}

var (
	_ Lease         = (*MySQLLease)(nil)
	_ state.Session = (*MySQLLease)(nil)
)

// NewMySQL returns a lease that has not connected yet.
func NewMySQL(opts MySQLOptions) (*MySQLLease, error) {
	if opts.Server == nil || opts.Name == "" || len(opts.Name) > 64 {
		return nil, errors.New("mysql lease needs server settings and a lock name of 1 to 64 characters")
	}
	if opts.RenewInterval <= 0 {
		opts.RenewInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &MySQLLease{opts: opts, log: opts.Logger, fence: newFence(Validity(opts.RenewInterval))}
	l.lockWait = max(1, int(math.Ceil(opts.RenewInterval.Seconds())))
	l.waitTO = WaitTimeout(opts.RenewInterval)
	c := opts.Server.Clone()
	c.Timeout = max(5*time.Second, 2*opts.RenewInterval)
	// A standby's GET_LOCK blocks lockWait seconds on the server.
	c.ReadTimeout = time.Duration(l.lockWait)*time.Second + 2*opts.RenewInterval + 5*time.Second
	c.WriteTimeout = c.ReadTimeout
	c.Logger = driverLog{opts.Logger}
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("mysql lease: %w", err)
	}
	l.db = sql.OpenDB(conn)
	// A connection given back must be closed, never reused: a reused lock
	// session would keep the lock alive behind the lease's back.
	l.db.SetMaxIdleConns(0)
	return l, nil
}

// WaitTimeout is the wait_timeout, in seconds, of the lock session for a
// renew interval: three renew intervals, at least 2 s. On a partition the
// server frees the lock after this long, while the leader gave it up after
// at most two renew intervals (a check and its timeout).
func WaitTimeout(renew time.Duration) int {
	return max(2, int(math.Ceil(3*renew.Seconds())))
}

// Validity is how long a successful check of the lock session lets the
// leader deliver: two renew intervals from the check's start, the longest a
// check and the next one (each bounded by the interval) can take. A new
// leader waits as long before its first delivery: its predecessor's last
// successful check started before the lock was freed (a killed session
// frees it at once), so that wait outlasts every delivery the predecessor
// may still start. On a partition the server frees the lock only after
// WaitTimeout, which is longer.
func Validity(renew time.Duration) time.Duration { return 2 * renew }

// Fence implements Lease.
func (l *MySQLLease) Fence() *Fence { return l.fence }

// Name implements Lease.
func (l *MySQLLease) Name() string {
	return fmt.Sprintf("mysql lock %q on %s", l.opts.Name, l.opts.Server.Addr)
}

// Acquire implements Lease: it waits in GET_LOCK on its session, one renew
// interval at a time, reconnecting after errors.
func (l *MySQLLease) Acquire(ctx context.Context) error {
	var conn *sql.Conn
	announced := false
	// Failures are retried at the renew interval, jittered, not backed
	// off further: once the server is back, a standby must take over as
	// soon as it could have without the outage.
	b := retry.New(retry.Every(l.opts.RenewInterval))
	for {
		if err := ctx.Err(); err != nil {
			discard(conn)
			return err
		}
		if conn == nil {
			var err error
			if conn, err = l.session(ctx); err != nil {
				l.log.Warn("ha: cannot reach the lock's server; retrying", "lease", l.Name(), "error", err)
				_ = b.Wait(ctx, err)
				continue
			}
		}
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", l.opts.Name, l.lockWait).Scan(&got)
		switch {
		case err != nil:
			discard(conn)
			conn = nil
			if ctx.Err() == nil {
				l.log.Warn("ha: GET_LOCK failed; retrying", "lease", l.Name(), "error", err)
				_ = b.Wait(ctx, err)
			}
		case got.Valid && got.Int64 == 1:
			l.mu.Lock()
			l.conn = conn
			l.mu.Unlock()
			// GET_LOCK may have waited up to lockWait in the server, so its
			// start says nothing; a check sent now starts the term.
			sent := time.Now()
			if held, err := l.Held(ctx); err != nil || !held {
				l.drop()
				conn = nil
				continue
			}
			l.fence.begin(sent, l.fence.Validity())
			return nil
		case !announced:
			announced = true
			l.log.Info("ha: standing by; another replica holds the lease", "lease", l.Name())
		}
	}
}

// session opens a new lock session with a short wait_timeout.
func (l *MySQLLease) session(ctx context.Context) (*sql.Conn, error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION wait_timeout = %d", l.waitTO)); err != nil {
		discard(conn)
		return nil, fmt.Errorf("set wait_timeout on the lock session: %w", err)
	}
	return conn, nil
}

// Keep implements Lease: every renew interval it checks, on the lock
// session, that the session still holds the lock; a failed or late check
// means the lease is lost, and the session is closed.
func (l *MySQLLease) Keep(ctx context.Context) error {
	return checkEvery(ctx, l.opts.RenewInterval, func(cctx context.Context) error {
		sent := time.Now()
		held, err := l.Held(cctx)
		if err == nil && held {
			l.fence.renewed(sent)
			return nil
		}
		if ctx.Err() != nil {
			return nil // stopping: not a loss
		}
		l.drop()
		if err == nil {
			err = errors.New("the lock session no longer holds the lock")
		}
		err = fmt.Errorf("%w: %s: %w", ErrLost, l.Name(), err)
		l.fence.end(err)
		return err
	})
}

// Held implements state.Session.
func (l *MySQLLease) Held(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return false, nil // closed after a failure, or never acquired
	}
	var held sql.NullInt64
	if err := l.conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", l.opts.Name).Scan(&held); err != nil {
		return false, err
	}
	return held.Valid && held.Int64 == 1, nil
}

// ExecContext implements state.Session: on the lock session while the lock
// is held, otherwise on a fresh session (where a fence condition on the lock
// is false). A statement that fails on the lock session gives the lease up:
// the session may be gone, and this replica can no longer prove it leads,
// so the error wraps state.ErrFenced and Keep reports the loss.
func (l *MySQLLease) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return l.db.ExecContext(ctx, query, args...)
	}
	res, err := l.conn.ExecContext(ctx, query, args...)
	if err != nil {
		discard(l.conn)
		l.conn = nil
		l.fence.end(fmt.Errorf("%w: %s: the lock session failed: %w", ErrLost, l.Name(), err))
		return nil, fmt.Errorf("%w: the lock session failed: %w", state.ErrFenced, err)
	}
	return res, nil
}

// Release implements Lease.
func (l *MySQLLease) Release(ctx context.Context) error {
	l.fence.end(errReleased)
	l.mu.Lock()
	conn := l.conn
	l.conn = nil
	l.mu.Unlock()
	if conn == nil {
		return nil
	}
	defer discard(conn)
	if _, err := conn.ExecContext(ctx, "DO RELEASE_LOCK(?)", l.opts.Name); err != nil {
		return fmt.Errorf("release %s: %w (closing its session releases it)", l.Name(), err)
	}
	return nil
}

// drop closes the lock session after a failed check.
func (l *MySQLLease) drop() {
	l.mu.Lock()
	conn := l.conn
	l.conn = nil
	l.mu.Unlock()
	discard(conn)
}

// Close implements Lease.
func (l *MySQLLease) Close() error {
	l.drop()
	return l.db.Close()
}

// discard closes a session for good: the pool keeps no idle connections,
// so the server ends the session and frees its locks.
func discard(conn *sql.Conn) {
	if conn != nil {
		_ = conn.Close()
	}
}

// sleep waits d; it reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// driverLog sends the driver's own messages (such as "unexpected EOF" when
// a session is killed) to the injected logger instead of stderr.
type driverLog struct{ log *slog.Logger }

func (d driverLog) Print(v ...any) { d.log.Debug("ha: mysql driver: " + fmt.Sprint(v...)) }
