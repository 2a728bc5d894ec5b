package state

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketSchemas holds the schema history of sources (the MySQL source:
// every version of every captured table's schema, by the binlog position
// it took effect at), so that re-reading an old event decodes it with the
// schema of its time. Key: source + NUL + the source's own record key.
var bucketSchemas = []byte("schemas")

func schemaKey(source, key string) []byte { return []byte(source + "\x00" + key) }

// SchemaRecords returns every record source saved, by its key.
func (s *Store) SchemaRecords(_ context.Context, source string) (map[string][]byte, error) {
	out := map[string][]byte{}
	prefix := schemaKey(source, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSchemas)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[string(k[len(prefix):])] = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load schema history of source %q: %w", source, err)
	}
	return out, nil
}

// SaveSchema durably stores (or replaces) the record key of source.
func (s *Store) SaveSchema(_ context.Context, source, key string, v []byte) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSchemas)
		if err != nil {
			return err
		}
		return b.Put(schemaKey(source, key), v)
	})
	if err != nil {
		return fmt.Errorf("save schema record %q of source %q: %w", key, source, err)
	}
	return nil
}
