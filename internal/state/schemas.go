package state

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketSchemas holds what sources recorded about their tables' schemas
// over time (the MySQL source: which columns were JSON, from which binlog
// position on), so that re-reading an old event decodes it as it was
// decoded live. Key: source + NUL + table.
var bucketSchemas = []byte("schemas")

func schemaKey(source, table string) []byte { return []byte(source + "\x00" + table) }

// LoadSchema returns the record source saved for table, or nil.
func (s *Store) LoadSchema(_ context.Context, source, table string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSchemas); b != nil {
			if v := b.Get(schemaKey(source, table)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schema record of %s for source %q: %w", table, source, err)
	}
	return out, nil
}

// SaveSchema durably replaces the record source keeps for table.
func (s *Store) SaveSchema(_ context.Context, source, table string, v []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSchemas)
		if err != nil {
			return err
		}
		return b.Put(schemaKey(source, table), v)
	})
	if err != nil {
		return fmt.Errorf("save schema record of %s for source %q: %w", table, source, err)
	}
	return nil
}
