package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	drv "github.com/go-sql-driver/mysql"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/ha"
	"github.com/ferry-cdc/ferry/internal/retry"
	"github.com/ferry-cdc/ferry/internal/state"
)

// Roles of a process, as /readyz, /status and logs show them.
const (
	RoleSingle  = ""        // no ha configured
	RoleStandby = "standby" // waiting for the lease
	RoleLeader  = "leader"  // holding the lease and streaming
)

// shared is the checkpoint store and lease a configuration asks for,
// opened once per process (a reload keeps them).
type shared struct {
	checkpoints state.Checkpoints // nil: the embedded store
	lease       ha.Lease          // nil without ha
	close       []func() error
}

// history returns the shared store of mysql sources' schema histories
// (nil: none, the state store keeps them).
func (s *shared) history() mysql.SchemaHistory {
	if h, ok := s.checkpoints.(mysql.SchemaHistory); ok {
		return h
	}
	return nil
}

func (s *shared) Close() error {
	var errs []error
	for i := len(s.close) - 1; i >= 0; i-- {
		errs = append(errs, s.close[i]())
	}
	return errors.Join(errs...)
}

// openShared opens what state.checkpoints and ha configure. A mysql
// checkpoint table with a mysql lease is fenced on the lock session; with a
// kubernetes lease every write first checks that the lease is still fresh.
func openShared(ctx context.Context, cfg *config.Config, log *slog.Logger) (*shared, error) {
	s := &shared{}
	if h := cfg.HA; h != nil {
		lease, err := newLease(cfg, log)
		if err != nil {
			return nil, err
		}
		s.lease = lease
		s.close = append(s.close, lease.Close)
	}
	if cfg.State.Checkpoints.Type != "mysql" {
		return s, nil
	}
	cp := cfg.State.Checkpoints
	server, err := checkpointServer(cfg)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("state.checkpoints: %w", err)
	}
	server.Timeout, server.ReadTimeout, server.WriteTimeout = 10*time.Second, 30*time.Second, 30*time.Second
	conn, err := drv.NewConnector(server)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("state.checkpoints: %w", err)
	}
	db := sql.OpenDB(conn)
	s.close = append(s.close, db.Close)
	opts := state.MySQLOptions{DB: db, Database: cp.Database, Table: cp.Table}
	switch l := s.lease.(type) {
	case *ha.MySQLLease:
		opts.Fence, opts.LockName = l, cfg.HA.Name
	case *ha.KubernetesLease:
		opts.Guard = l.Valid
	}
	store, err := openTable(ctx, opts, startupTimeout(cfg), log)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("state.checkpoints: %w", err)
	}
	s.checkpoints = store
	log.Info("checkpoints and schema histories in mysql tables", "table", store.Table(), "schema_table", store.SchemaTable(),
		"server", server.Addr, "fenced", opts.Fence != nil || opts.Guard != nil)
	return s, nil
}

// openTable opens the checkpoint table, retrying for up to wait while the
// server cannot be reached: a sidecar may start before its database.
func openTable(ctx context.Context, opts state.MySQLOptions, wait time.Duration, log *slog.Logger) (*state.MySQLCheckpoints, error) {
	var store *state.MySQLCheckpoints
	err := retry.New(retry.Reconnect(), retry.Until(time.Now().Add(wait))).Do(ctx, func(ctx context.Context) error {
		var err error
		store, err = state.OpenMySQL(ctx, opts)
		return err
	}, func(_ int, err error, wait time.Duration) {
		log.Warn("checkpoint table not reachable yet; retrying", "retry_in", wait.String(), "error", err)
	})
	return store, err
}

// startupTimeout is how long the checkpoint table may stay unreachable at
// start: the startup_timeout of its source, else a minute.
func startupTimeout(cfg *config.Config) time.Duration {
	if src, ok := cfg.Sources[cfg.State.Checkpoints.Source]; ok {
		if m, ok := src.Spec.(ferry.MySQLServer); ok {
			if login, err := m.Login(); err == nil {
				return login.StartupTimeout
			}
		}
	}
	return time.Minute
}

func newLease(cfg *config.Config, log *slog.Logger) (ha.Lease, error) {
	h := cfg.HA
	switch h.Lease {
	case "mysql":
		server, err := serverOf(cfg, h.Source)
		if err != nil {
			return nil, fmt.Errorf("ha: %w", err)
		}
		return ha.NewMySQL(ha.MySQLOptions{Server: server, Name: h.Name, RenewInterval: h.RenewInterval, Logger: log})
	case "kubernetes":
		k := h.Kubernetes
		return ha.NewKubernetes(ha.KubernetesOptions{Name: h.Name, Namespace: k.Namespace, Identity: k.Identity,
			LeaseDuration: k.LeaseDuration, RenewInterval: h.RenewInterval, APIServer: k.APIServer,
			TokenFile: k.TokenFile, CAFile: k.CAFile, Logger: log})
	}
	return nil, fmt.Errorf("ha.lease: unknown lease %q", h.Lease)
}

// serverOf returns the driver settings of a mysql source's server,
// credentials and TLS included. The loader checked that source names a
// ferry.MySQLServer (ha.source, state.checkpoints.source).
func serverOf(cfg *config.Config, source string) (*drv.Config, error) {
	m, ok := cfg.Sources[source].Spec.(ferry.MySQLServer)
	if !ok {
		return nil, fmt.Errorf("source %s is not on a MySQL-protocol server", source)
	}
	login, err := m.Login()
	if err != nil {
		return nil, fmt.Errorf("source %s: tls: %w", source, err)
	}
	c := drv.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd = "tcp", login.Addr, login.User, login.Password.Reveal()
	c.Timeout, c.TLS = login.ConnectTimeout, login.TLS
	return c, nil
}

// checkpointServer returns the driver settings of the checkpoint table's
// server.
func checkpointServer(cfg *config.Config) (*drv.Config, error) {
	cp := cfg.State.Checkpoints
	if cp.Addr == "" {
		return serverOf(cfg, cp.Source)
	}
	c := drv.NewConfig()
	c.Net, c.Addr, c.User, c.Passwd = "tcp", cp.Addr, cp.User, cp.Password.Reveal()
	return c, nil
}

// excludeCheckpointTable keeps the sources on the checkpoint table's
// server from capturing Ferry's own checkpoint and schema history writes.
func excludeCheckpointTable(cfg *config.Config) {
	cp := cfg.State.Checkpoints
	if cp.Type != "mysql" {
		return
	}
	addr := cp.Addr
	if addr == "" {
		addr = cfg.Sources[cp.Source].Spec.(ferry.MySQLServer).ServerAddr() // checked by the loader
	}
	for _, name := range cfg.SourceNames() {
		if m, ok := cfg.Sources[name].Spec.(ferry.MySQLServer); ok && m.ServerAddr() == addr {
			m.ExcludeTable(cp.Database, cp.Table)
			m.ExcludeTable(cp.Database, cp.Table+state.SchemaTableSuffix)
		}
	}
}

// OpenCheckpoints opens the configured checkpoint store for the checkpoint
// commands: the embedded store (exclusively, so never beside a running
// Ferry on the same state.dir) or the mysql table. With a mysql lease, a
// write first takes the lock, waiting at most wait: while a replica streams
// it is refused, since the leader would overwrite it. Without write the
// embedded store is opened read-only: a missing file is state.ErrNoStore,
// and nothing is created or rewritten.
func OpenCheckpoints(ctx context.Context, cfg *config.Config, write bool, wait time.Duration, log *slog.Logger) (state.Checkpoints, func() error, error) {
	if cfg.State.Checkpoints.Type != "mysql" {
		store, err := state.Open(cfg.State.Dir, state.Options{ReadOnly: !write})
		if err != nil {
			return nil, nil, err
		}
		return store, store.Close, nil
	}
	if cfg.HA != nil && cfg.HA.Lease != "mysql" {
		// Only a mysql lock can fence a command's writes; with another
		// lease the operator stops the replicas first (see README).
		c := *cfg
		c.HA = nil
		cfg = &c
	}
	s, err := openShared(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	if write && s.lease != nil {
		if _, ok := s.lease.(*ha.MySQLLease); ok {
			actx, cancel := context.WithTimeout(ctx, wait)
			err := s.lease.Acquire(actx)
			cancel()
			if err != nil {
				_ = s.Close()
				return nil, nil, fmt.Errorf("%w: a replica is streaming (it holds %s); stop every replica first", ErrLeaseBusy, s.lease.Name())
			}
		}
	}
	return s.checkpoints, s.Close, nil
}

// ErrLeaseBusy means a command that must not run beside a leader found one.
var ErrLeaseBusy = errors.New("ha lease is held")
