// Package state is Ferry's embedded, crash-safe state store: source
// checkpoints and dead letters, kept in one bbolt file under state.dir.
//
// bbolt commits with fsync and copy-on-write pages, so a process killed at
// any instant leaves the last committed value of every key readable. The file
// is locked while open: a second Ferry on the same state.dir fails fast with
// ErrLocked instead of corrupting the first one's progress.
package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ferry-cdc/ferry"
)

// FileName is the store's file inside state.dir.
const FileName = "ferry.db"

var (
	// ErrLocked means another process holds the state store open.
	ErrLocked = errors.New("state store is in use by another ferry process")
	// ErrNoStore means a read-only open found no state file: nothing was
	// ever saved in this state.dir (and a read-only open creates nothing).
	ErrNoStore = errors.New("no state store yet")
)

var (
	bucketCheckpoints = []byte("checkpoints")
	bucketDeadLetters = []byte("dead_letters")
)

// Store is the open state store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's lock; default 1s.
	LockTimeout time.Duration
	// ReadOnly opens without taking the write lock's exclusivity, and never
	// creates or writes the file: a missing file is ErrNoStore.
	ReadOnly bool
}

// Open opens (creating if needed, unless read-only) the store in dir. A
// file that exists but is empty, truncated or corrupted is refused with an
// error wrapping ErrCorrupt, never replaced. The dir is kept at 0700 and
// the file at 0600: checkpoints and dead letters hold row data.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	path := filepath.Join(dir, FileName)
	if opts.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNoStore)
		}
	} else if err := ownerOnly(dir); err != nil {
		return nil, err
	}
	if err := checkFile(path, opts.LockTimeout); err != nil {
		return nil, err
	}
	// The freelist is rebuilt on open instead of written at every commit:
	// with the webhook journal appending and deleting constantly, writing it
	// dominated commit time (see docs/benchmarks.md).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly,
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: 256 << 20})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (stop the other process or use another state.dir)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	if !opts.ReadOnly {
		if err := os.Chmod(path, 0o600); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("restrict state store %s to its owner: %w", path, err)
		}
	}
	// Group commit for the webhook journal: concurrent appends wait at most
	// this long to share one fsync (bbolt's default is 10ms).
	db.MaxBatchDelay = 2 * time.Millisecond
	db.MaxBatchSize = 500
	s := &Store{db: db, path: path}
	if !opts.ReadOnly {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketCheckpoints, bucketDeadLetters} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("initialize state store %s: %w", path, err)
		}
	}
	return s, nil
}

// ownerOnly creates dir, or narrows an existing one, to mode 0700. A dir
// Ferry may not chmod (a volume mount owned by another user) keeps its
// mode: the file inside is 0600 anyway.
func ownerOnly(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil && !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("restrict state dir %s to its owner: %w", dir, err)
	}
	return nil
}

// Path returns the store's file path.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock.
func (s *Store) Close() error { return s.db.Close() }

// Checkpoint is a source's persisted position.
type Checkpoint struct {
	Position ferry.Position
	SavedAt  time.Time
}

// LoadCheckpoint returns the checkpoint of source; ok is false when none was
// saved.
func (s *Store) LoadCheckpoint(_ context.Context, source string) (cp Checkpoint, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(source))
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			return fmt.Errorf("checkpoint of source %q is corrupt (%d bytes)", source, len(v))
		}
		ok = true
		cp.SavedAt = time.Unix(0, int64(binary.BigEndian.Uint64(v[:8])))
		cp.Position = append(ferry.Position(nil), v[8:]...)
		return nil
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("load checkpoint of source %q: %w", source, err)
	}
	return cp, ok, nil
}

// SaveCheckpoint durably records pos as the checkpoint of source; when it
// returns nil the value survives a crash.
func (s *Store) SaveCheckpoint(_ context.Context, source string, pos ferry.Position) error {
	v := make([]byte, 8+len(pos))
	binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
	copy(v[8:], pos)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Put([]byte(source), v)
	})
	if err != nil {
		return fmt.Errorf("save checkpoint of source %q: %w", source, err)
	}
	return nil
}

// DeleteCheckpoint removes the checkpoint of source, so it starts as its
// configuration says on the next run.
func (s *Store) DeleteCheckpoint(_ context.Context, source string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCheckpoints).Delete([]byte(source))
	})
	if err != nil {
		return fmt.Errorf("delete checkpoint of source %q: %w", source, err)
	}
	return nil
}
