package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
)

// mysqlSource returns the configuration of a mysql source, for the schema
// history commands.
func mysqlSource(cfg *config.Config, source string) (*mysql.Config, error) {
	s, ok := cfg.Sources[source]
	if !ok {
		return nil, fmt.Errorf("no source named %q (configured: %v)", source, cfg.SourceNames())
	}
	c, ok := s.Spec.(*mysql.Config)
	if !ok {
		return nil, fmt.Errorf("source %q is a %s source; only mysql sources keep a schema history", source, s.Type)
	}
	return c, nil
}

// ShowSchemaHistory returns the schema history a mysql source keeps in
// store (see mysql.ShowSchemaHistory).
func ShowSchemaHistory(ctx context.Context, cfg *config.Config, store mysql.SchemaHistory, source, table, at string) ([]mysql.SchemaVersionView, error) {
	if _, err := mysqlSource(cfg, source); err != nil {
		return nil, err
	}
	return mysql.ShowSchemaHistory(ctx, store, source, table, at)
}

// ResyncSchema re-reads a table's schema for a mysql source that is not
// running; it returns the position the schema is recorded at.
func ResyncSchema(ctx context.Context, cfg *config.Config, store mysql.SchemaHistory, source, table string) (mysql.Resync, error) {
	c, err := mysqlSource(cfg, source)
	if err != nil {
		return mysql.Resync{}, err
	}
	return mysql.ResyncSchema(ctx, source, c, store, table)
}

// OpenSchemaHistory opens the shared store of mysql sources' schema
// histories for the schema commands: ok is false when state.checkpoints is
// not a mysql table (the state store keeps them). With write and a mysql
// lease, the lock is taken first, waiting at most wait, so a resync never
// writes beside a streaming leader (ErrLeaseBusy).
func OpenSchemaHistory(ctx context.Context, cfg *config.Config, write bool, wait time.Duration, log *slog.Logger) (h mysql.SchemaHistory, closeFn func() error, ok bool, err error) {
	if cfg.State.Checkpoints.Type != "mysql" {
		return nil, nil, false, nil
	}
	store, closeStore, err := OpenCheckpoints(ctx, cfg, write, wait, log)
	if err != nil {
		return nil, nil, false, err
	}
	h, ok = store.(mysql.SchemaHistory)
	if !ok {
		_ = closeStore()
		return nil, nil, false, fmt.Errorf("state.checkpoints: %T keeps no schema history", store)
	}
	return h, closeStore, true, nil
}

// ReplayHistory is the schema history a standalone replay decodes with:
// store, or under a shared checkpoint table that table's history, read
// only (a replay running beside the replicas may not write what only the
// leader writes; what it learns from DDL it reads stays in its memory).
func ReplayHistory(ctx context.Context, cfg *config.Config, store *state.Store, log *slog.Logger) (mysql.SchemaHistory, func() error, error) {
	h, closeFn, ok, err := OpenSchemaHistory(ctx, cfg, false, 0, log)
	switch {
	case err != nil:
		return nil, nil, err
	case ok:
		return readOnlyHistory{h}, closeFn, nil
	case store == nil:
		return nil, func() error { return nil }, nil
	}
	return store, func() error { return nil }, nil
}

// readOnlyHistory reads a schema history and keeps what it is given to
// save in the caller's memory only.
type readOnlyHistory struct{ mysql.SchemaHistory }

func (readOnlyHistory) SaveSchema(context.Context, string, string, []byte) error { return nil }

// schemaControl serves the schema histories of a running Ferry's mysql
// sources to the admin API.
type schemaControl struct {
	store *state.Store
	live  *liveControl
}

func (s *schemaControl) Show(ctx context.Context, source, table, at string) ([]mysql.SchemaVersionView, error) {
	c, err := s.live.get()
	if err != nil {
		return nil, err
	}
	if _, err := mysqlSource(c.a.cfg, source); err != nil {
		return nil, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	return mysql.ShowSchemaHistory(ctx, c.a.schemaHistory(), source, table, at)
}

func (s *schemaControl) Resync(ctx context.Context, source, table string) (mysql.Resync, error) {
	c, err := s.live.get()
	if err != nil {
		return mysql.Resync{}, err
	}
	src, ok := c.a.sources[source].(*mysql.Source)
	if !ok {
		return mysql.Resync{}, fmt.Errorf("%w: no mysql source named %q (configured: %v)", admin.ErrNotFound, source, c.a.cfg.SourceNames())
	}
	return src.ResyncSchema(ctx, table)
}
