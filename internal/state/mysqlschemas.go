package state

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// SchemaTableSuffix names the schema history table after the checkpoint
// table it sits next to: `ferry_checkpoints` keeps its history in
// `ferry_checkpoints_schema_history`, so two groups with their own
// checkpoint tables never mix their histories.
const SchemaTableSuffix = "_schema_history"

// createSchemaTable creates the schema history table next to the checkpoint
// table: one row per record of a source's history (the records the
// embedded store's `schemas` bucket holds), keyed like them. The primary
// key is a hash of source and record key, so that no index is longer than
// the 767 bytes old servers (innodb_large_prefix off) allow.
func (s *MySQLCheckpoints) createSchemaTable(ctx context.Context) error {
	_, err := s.opts.DB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+s.schemas+` (
  record_id BINARY(32) NOT NULL PRIMARY KEY COMMENT 'SHA-256 of source_key, NUL, record_key',
  source_key VARCHAR(191) NOT NULL,
  record_key VARBINARY(1024) NOT NULL,
  record LONGBLOB NOT NULL,
  saved_at_ns BIGINT NOT NULL,
  KEY source_key (source_key)
) COMMENT 'ferry schema history of mysql sources (state.checkpoints)'`)
	if err != nil {
		return fmt.Errorf("create schema history table %s: %w", s.schemas, err)
	}
	return nil
}

// recordID is the schema history table's primary key of a record.
func recordID(source, key string) []byte {
	sum := sha256.Sum256([]byte(source + "\x00" + key))
	return sum[:]
}

// SchemaTable returns the quoted schema history table name.
func (s *MySQLCheckpoints) SchemaTable() string { return s.schemas }

// SchemaRecords returns every schema history record source saved, by its
// key (the mysql source's SchemaHistory). Replicas read it at takeover, so
// the new leader decodes with the history its predecessor recorded.
func (s *MySQLCheckpoints) SchemaRecords(ctx context.Context, source string) (map[string][]byte, error) {
	rows, err := s.opts.DB.QueryContext(ctx, "SELECT record_key, record FROM "+s.schemas+" WHERE source_key = ?", source)
	if err != nil {
		return nil, fmt.Errorf("load schema history of source %q from %s: %w", source, s.schemas, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("load schema history of source %q from %s: %w", source, s.schemas, err)
		}
		out[string(k)] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load schema history of source %q from %s: %w", source, s.schemas, err)
	}
	return out, nil
}

// SaveSchema durably stores (or replaces) the record key of source, fenced
// like SaveCheckpoint: a replica that lost the lease writes nothing and
// gets an error wrapping ErrFenced. The source saves a DDL's record before
// it hands on any change past that DDL, so no checkpoint can point past a
// schema version that is not in this table.
func (s *MySQLCheckpoints) SaveSchema(ctx context.Context, source, key string, v []byte) error {
	ns, id := time.Now().UnixNano(), recordID(source, key)
	if s.opts.Guard != nil {
		if err := s.opts.Guard(); err != nil {
			return fmt.Errorf("save schema record %q of source %q: %w: %w", key, source, ErrFenced, err)
		}
	}
	if s.opts.Fence == nil {
		_, err := s.opts.DB.ExecContext(ctx, "INSERT INTO "+s.schemas+" (record_id, source_key, record_key, record, saved_at_ns) VALUES (?, ?, ?, ?, ?)"+
			" ON DUPLICATE KEY UPDATE record = ?, saved_at_ns = ?", id, source, []byte(key), v, ns, v, ns)
		if err != nil {
			return fmt.Errorf("save schema record %q of source %q to %s: %w", key, source, s.schemas, err)
		}
		return nil
	}
	res, err := s.opts.Fence.ExecContext(ctx, "INSERT INTO "+s.schemas+" (record_id, source_key, record_key, record, saved_at_ns)"+
		" SELECT ?, ?, ?, ?, ? FROM DUAL WHERE IS_USED_LOCK(?) = CONNECTION_ID()"+
		" ON DUPLICATE KEY UPDATE record = ?, saved_at_ns = ?", id, source, []byte(key), v, ns, s.opts.LockName, v, ns)
	if err != nil {
		return fmt.Errorf("save schema record %q of source %q to %s on the lock session: %w", key, source, s.schemas, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// Nothing changed: the lock is gone, or (within one nanosecond) the
	// same record was written again.
	held, err := s.opts.Fence.Held(ctx)
	if err != nil {
		return fmt.Errorf("save schema record %q of source %q: check the lock: %w", key, source, err)
	}
	if !held {
		return fmt.Errorf("save schema record %q of source %q: %w (lock %q is not held by this session)", key, source, ErrFenced, s.opts.LockName)
	}
	return nil
}
