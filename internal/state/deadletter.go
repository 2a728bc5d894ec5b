package state

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DeadLetter is an event a sink permanently rejected or that exhausted its
// retries, or a change a rule failed on. Nothing is dropped silently: it is
// kept here with the reason until it is replayed or deleted.
type DeadLetter struct {
	Seq      uint64          `json:"seq"` // assigned by the store
	Time     time.Time       `json:"time"`
	Source   string          `json:"source"`
	Sink     string          `json:"sink,omitempty"` // empty when a rule failed
	Rule     string          `json:"rule,omitempty"`
	EventID  string          `json:"event_id"`
	Event    json.RawMessage `json:"event"` // the structured-mode CloudEvent, or the change for rule failures
	Error    string          `json:"error"`
	Attempts int             `json:"attempts"`
}

// PutDeadLetters durably appends letters in one transaction.
func (s *Store) PutDeadLetters(_ context.Context, letters []DeadLetter) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeadLetters)
		for i := range letters {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			letters[i].Seq = seq
			v, err := json.Marshal(&letters[i])
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store %d dead letter(s): %w", len(letters), err)
	}
	return nil
}

// DeadLetters calls fn for each stored letter in arrival order until fn
// returns an error.
func (s *Store) DeadLetters(_ context.Context, fn func(DeadLetter) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeadLetters)
		if b == nil { // a read-only open of a store that never had one
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode dead letter %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return fn(d)
		})
	})
}

// DeleteDeadLetters removes the letters with the given sequence numbers.
func (s *Store) DeleteDeadLetters(_ context.Context, seqs ...uint64) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeadLetters)
		for _, seq := range seqs {
			if err := b.Delete(seqKey(seq)); err != nil {
				return fmt.Errorf("delete dead letter %d: %w", seq, err)
			}
		}
		return nil
	})
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}
