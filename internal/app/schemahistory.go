package app

import (
	"context"
	"fmt"

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
func ShowSchemaHistory(ctx context.Context, cfg *config.Config, store *state.Store, source, table, at string) ([]mysql.SchemaVersionView, error) {
	if _, err := mysqlSource(cfg, source); err != nil {
		return nil, err
	}
	return mysql.ShowSchemaHistory(ctx, store, source, table, at)
}

// ResyncSchema re-reads a table's schema for a mysql source that is not
// running; it returns the position the schema is recorded at.
func ResyncSchema(ctx context.Context, cfg *config.Config, store *state.Store, source, table string) (string, error) {
	c, err := mysqlSource(cfg, source)
	if err != nil {
		return "", err
	}
	return mysql.ResyncSchema(ctx, source, c, store, table)
}

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
	return mysql.ShowSchemaHistory(ctx, s.store, source, table, at)
}

func (s *schemaControl) Resync(ctx context.Context, source, table string) (string, error) {
	c, err := s.live.get()
	if err != nil {
		return "", err
	}
	src, ok := c.a.sources[source].(*mysql.Source)
	if !ok {
		return "", fmt.Errorf("%w: no mysql source named %q (configured: %v)", admin.ErrNotFound, source, c.a.cfg.SourceNames())
	}
	return src.ResyncSchema(ctx, table)
}
