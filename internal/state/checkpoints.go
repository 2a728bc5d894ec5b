package state

import (
	"context"
	"errors"

	"github.com/ferry-cdc/ferry"
)

// ErrFenced means a checkpoint write was refused because this replica no
// longer holds the HA lease: another replica may already be streaming, so
// the caller must stop at once instead of retrying.
var ErrFenced = errors.New("checkpoint write refused: this replica no longer holds the ha lease")

// Checkpoints stores the position of each source, by source key.
//
// Lifecycle: the store is opened before the pipeline starts and closed after
// it stopped; every method is safe for concurrent use. LoadCheckpoint
// reports ok=false when nothing was saved for key. SaveCheckpoint returns
// nil only once pos is durable (it survives a crash of this process); a
// store shared by HA replicas returns an error wrapping ErrFenced when this
// replica lost the lease, and nothing was written. DeleteCheckpoint makes
// the source start as configured on its next run.
//
// *Store (the embedded bbolt store) and *MySQLCheckpoints implement it.
type Checkpoints interface {
	LoadCheckpoint(ctx context.Context, key string) (Checkpoint, bool, error)
	SaveCheckpoint(ctx context.Context, key string, pos ferry.Position) error
	DeleteCheckpoint(ctx context.Context, key string) error
}

var _ Checkpoints = (*Store)(nil)
