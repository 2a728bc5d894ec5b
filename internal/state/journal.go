package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The journal is the durable queue behind request-driven sources: a request
// is answered 2xx only once its records are here, and a record leaves only
// when every sink acknowledged it. Appends from concurrent requests are
// group-committed (bbolt's Batch): one fsync covers all of them.
//
// Buckets, per source: "journal/<source>" seq -> record; "dedupe/<source>"
// delivery id -> answer; "dedupe_by_time/<source>" time|id -> nothing, to
// expire ids in order.

// Answer is what a request with a delivery id was told, kept so that a
// retry within the dedupe window is told the same.
type Answer struct {
	Seqs   []uint64 `json:"seqs"`
	Status int      `json:"status"`
	Body   []byte   `json:"body"`
	Time   int64    `json:"time"` // unix nanoseconds
}

// JournalEntry is one stored record.
type JournalEntry struct {
	Seq    uint64
	Record []byte
}

func journalBucket(source string) []byte { return []byte("journal/" + source) }
func dedupeBucket(source string) []byte  { return []byte("dedupe/" + source) }
func byTimeBucket(source string) []byte  { return []byte("dedupe_by_time/" + source) }

// Accept durably appends records for source. With a non-empty deliveryID it
// first looks the id up: if it was seen (and not expired), nothing is
// written and the earlier answer is returned as prior. Otherwise the answer
// (its Seqs filled in) is stored under the id in the same transaction, so
// concurrent retries cannot both be appended.
func (s *Store) Accept(_ context.Context, source, deliveryID string, records [][]byte, answer Answer) (seqs []uint64, prior *Answer, err error) {
	err = s.db.Batch(func(tx *bolt.Tx) error {
		seqs, prior = nil, nil // Batch may run fn again
		j, d, bt, err := webhookBuckets(tx, source)
		if err != nil {
			return err
		}
		if deliveryID != "" {
			if v := d.Get([]byte(deliveryID)); v != nil {
				var a Answer
				if err := json.Unmarshal(v, &a); err != nil {
					return fmt.Errorf("decode answer of delivery %q: %w", deliveryID, err)
				}
				prior = &a
				return nil
			}
		}
		for _, r := range records {
			seq, err := j.NextSequence()
			if err != nil {
				return err
			}
			if err := j.Put(seqKey(seq), r); err != nil {
				return err
			}
			seqs = append(seqs, seq)
		}
		if deliveryID == "" {
			return nil
		}
		answer.Seqs = seqs
		v, err := json.Marshal(answer)
		if err != nil {
			return err
		}
		if err := d.Put([]byte(deliveryID), v); err != nil {
			return err
		}
		return bt.Put(append(seqKey(uint64(answer.Time)), deliveryID...), nil)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("journal %s: append: %w", source, err)
	}
	return seqs, prior, nil
}

func webhookBuckets(tx *bolt.Tx, source string) (j, d, bt *bolt.Bucket, err error) {
	if j, err = tx.CreateBucketIfNotExists(journalBucket(source)); err != nil {
		return
	}
	if d, err = tx.CreateBucketIfNotExists(dedupeBucket(source)); err != nil {
		return
	}
	bt, err = tx.CreateBucketIfNotExists(byTimeBucket(source))
	return
}

// Entries returns up to max records with seq > after, in order.
func (s *Store) Entries(_ context.Context, source string, after uint64, max int) ([]JournalEntry, error) {
	var out []JournalEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalBucket(source))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			out = append(out, JournalEntry{Seq: binary.BigEndian.Uint64(k), Record: append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal %s: read: %w", source, err)
	}
	return out, nil
}

// Remove deletes the records with seq <= upTo: every sink has them.
func (s *Store) Remove(_ context.Context, source string, upTo uint64) (int, error) {
	n := 0
	err := s.db.Batch(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(journalBucket(source))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= upTo; k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal %s: remove: %w", source, err)
	}
	return n, nil
}

// Depth counts the records waiting in the journal.
func (s *Store) Depth(_ context.Context, source string) (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(journalBucket(source)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// Expire forgets delivery ids recorded before the given time.
func (s *Store) Expire(_ context.Context, source string, before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		d, bt := tx.Bucket(dedupeBucket(source)), tx.Bucket(byTimeBucket(source))
		if d == nil || bt == nil {
			return nil
		}
		limit := seqKey(uint64(before.UnixNano()))
		c := bt.Cursor()
		for k, _ := c.First(); k != nil && len(k) >= 8 && string(k[:8]) < string(limit); k, _ = c.Next() {
			if err := d.Delete(k[8:]); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("journal %s: expire delivery ids: %w", source, err)
	}
	return n, nil
}

// JournalInfo describes a source's journal.
type JournalInfo struct {
	Depth        int
	First        uint64 // 0 when empty
	LastAssigned uint64
}

// Info returns the journal's depth, its first waiting seq, and the last seq
// ever assigned (sequences never repeat, even after records are removed).
func (s *Store) Info(_ context.Context, source string) (JournalInfo, error) {
	var info JournalInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(journalBucket(source))
		if b == nil {
			return nil
		}
		info.Depth = b.Stats().KeyN
		info.LastAssigned = b.Sequence()
		if k, _ := b.Cursor().First(); k != nil {
			info.First = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	return info, err
}
