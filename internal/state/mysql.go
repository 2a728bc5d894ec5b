package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Session runs statements on the MySQL HA lease's lock session, so that
// fenced checkpoint writes run on the very session that holds the lock.
// While the lock is not held, statements run on another session, where the
// fence condition is false.
type Session interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	// Held reports whether the lock session still holds the lock.
	Held(ctx context.Context) (bool, error)
}

// MySQLOptions configure a MySQL checkpoint table.
type MySQLOptions struct {
	// DB reads checkpoints, and writes them when neither Fence nor Guard is
	// set. The caller owns it (Close does not close it).
	DB *sql.DB
	// Database and Table name the table; it is created when missing.
	Database, Table string
	// Fence, when set, writes through the lock session, and only while that
	// session holds the named lock (checked in the same statement), so a
	// replica that lost the lock can never overwrite its successor's
	// checkpoint.
	Fence    Session
	LockName string
	// Guard, when set, is called before every write; an error refuses the
	// write (wrapped with ErrFenced). The Kubernetes lease uses it: the
	// write proceeds only while the lease is held and not about to expire.
	Guard func() error
}

// MySQLCheckpoints keeps checkpoints in a table that HA replicas share:
// one row per source key with the position and when it was saved; and, in
// a table next to it, the schema histories of mysql sources.
// It implements Checkpoints; it is safe for concurrent use.
type MySQLCheckpoints struct {
	opts    MySQLOptions
	table   string // quoted `db`.`table`
	schemas string // quoted `db`.`table_schema_history`
}

var _ Checkpoints = (*MySQLCheckpoints)(nil)

// OpenMySQL creates the table when missing and returns the store. Database
// and table names are checked by the configuration loader (letters, digits
// and underscores), so quoting them with backticks is safe.
func OpenMySQL(ctx context.Context, opts MySQLOptions) (*MySQLCheckpoints, error) {
	if opts.DB == nil || opts.Database == "" || opts.Table == "" {
		return nil, errors.New("mysql checkpoint store needs a connection, a database and a table")
	}
	if opts.Fence != nil && opts.LockName == "" {
		return nil, errors.New("mysql checkpoint store: a fenced store needs the lock name")
	}
	if len(opts.Table)+len(SchemaTableSuffix) > 64 {
		return nil, fmt.Errorf("mysql checkpoint store: table name %q is longer than %d characters (its schema history table adds %q)",
			opts.Table, 64-len(SchemaTableSuffix), SchemaTableSuffix)
	}
	s := &MySQLCheckpoints{opts: opts, table: "`" + opts.Database + "`.`" + opts.Table + "`",
		schemas: "`" + opts.Database + "`.`" + opts.Table + SchemaTableSuffix + "`"}
	_, err := opts.DB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+s.table+` (
  source_key VARCHAR(191) NOT NULL PRIMARY KEY,
  position BLOB NOT NULL,
  saved_at_ns BIGINT NOT NULL
) COMMENT 'ferry source checkpoints (state.checkpoints)'`)
	if err != nil {
		return nil, fmt.Errorf("create checkpoint table %s: %w", s.table, err)
	}
	if err := s.createSchemaTable(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Table returns the quoted table name.
func (s *MySQLCheckpoints) Table() string { return s.table }

// LoadCheckpoint implements Checkpoints.
func (s *MySQLCheckpoints) LoadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error) {
	var pos []byte
	var ns int64
	err := s.opts.DB.QueryRowContext(ctx, "SELECT position, saved_at_ns FROM "+s.table+" WHERE source_key = ?", key).Scan(&pos, &ns)
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("load checkpoint of source %q from %s: %w", key, s.table, err)
	}
	return Checkpoint{Position: ferry.Position(pos), SavedAt: time.Unix(0, ns)}, true, nil
}

// SaveCheckpoint implements Checkpoints. A fenced store writes on the lock
// session with INSERT ... SELECT ... WHERE IS_USED_LOCK(name) =
// CONNECTION_ID(): when the condition fails nothing is written, no row is
// affected, and the error wraps ErrFenced.
func (s *MySQLCheckpoints) SaveCheckpoint(ctx context.Context, key string, pos ferry.Position) error {
	ns := time.Now().UnixNano()
	if s.opts.Guard != nil {
		if err := s.opts.Guard(); err != nil {
			return fmt.Errorf("save checkpoint of source %q: %w: %w", key, ErrFenced, err)
		}
	}
	if s.opts.Fence == nil {
		_, err := s.opts.DB.ExecContext(ctx, "INSERT INTO "+s.table+" (source_key, position, saved_at_ns) VALUES (?, ?, ?)"+
			" ON DUPLICATE KEY UPDATE position = ?, saved_at_ns = ?", key, []byte(pos), ns, []byte(pos), ns)
		if err != nil {
			return fmt.Errorf("save checkpoint of source %q to %s: %w", key, s.table, err)
		}
		return nil
	}
	res, err := s.opts.Fence.ExecContext(ctx, "INSERT INTO "+s.table+" (source_key, position, saved_at_ns)"+
		" SELECT ?, ?, ? FROM DUAL WHERE IS_USED_LOCK(?) = CONNECTION_ID()"+
		" ON DUPLICATE KEY UPDATE position = ?, saved_at_ns = ?", key, []byte(pos), ns, s.opts.LockName, []byte(pos), ns)
	if err != nil {
		return fmt.Errorf("save checkpoint of source %q to %s on the lock session: %w", key, s.table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save checkpoint of source %q to %s: %w", key, s.table, err)
	}
	if n == 0 {
		return fmt.Errorf("save checkpoint of source %q: %w (lock %q is not held by this session)", key, ErrFenced, s.opts.LockName)
	}
	return nil
}

// DeleteCheckpoint implements Checkpoints, fenced like SaveCheckpoint. A
// fenced delete of a key that has no row is not an error.
func (s *MySQLCheckpoints) DeleteCheckpoint(ctx context.Context, key string) error {
	if s.opts.Guard != nil {
		if err := s.opts.Guard(); err != nil {
			return fmt.Errorf("delete checkpoint of source %q: %w: %w", key, ErrFenced, err)
		}
	}
	if s.opts.Fence == nil {
		if _, err := s.opts.DB.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE source_key = ?", key); err != nil {
			return fmt.Errorf("delete checkpoint of source %q from %s: %w", key, s.table, err)
		}
		return nil
	}
	res, err := s.opts.Fence.ExecContext(ctx, "DELETE FROM "+s.table+" WHERE source_key = ? AND IS_USED_LOCK(?) = CONNECTION_ID()", key, s.opts.LockName)
	if err != nil {
		return fmt.Errorf("delete checkpoint of source %q from %s on the lock session: %w", key, s.table, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// Nothing deleted: either there was no row or the lock is gone.
	held, err := s.opts.Fence.Held(ctx)
	if err != nil {
		return fmt.Errorf("delete checkpoint of source %q: check the lock: %w", key, err)
	}
	if !held {
		return fmt.Errorf("delete checkpoint of source %q: %w (lock %q is not held by this session)", key, ErrFenced, s.opts.LockName)
	}
	return nil
}
