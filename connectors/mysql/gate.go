package mysql

import (
	"context"

	"golang.org/x/sync/semaphore"

	"github.com/ferry-cdc/ferry"
)

// gate bounds the decoded changes between the stream goroutine and Read,
// by count and by size, so a burst of big transactions cannot pile up in
// memory ahead of the pipeline's own in-flight limit. A batch bigger than a
// bound still passes, alone. acquire is called by the stream goroutine,
// release by Read for every batch it took, with the same batch.
type gate struct {
	count, bytes       *semaphore.Weighted
	maxCount, maxBytes int64
}

func newGate(maxCount, maxBytes int64) *gate {
	return &gate{count: semaphore.NewWeighted(maxCount), bytes: semaphore.NewWeighted(maxBytes), maxCount: maxCount, maxBytes: maxBytes}
}

func (g *gate) weights(b ferry.Batch) (int64, int64) {
	return max(1, min(int64(len(b.Changes)), g.maxCount)), min(b.SizeOfChanges(), g.maxBytes)
}

func (g *gate) acquire(ctx context.Context, b ferry.Batch) error {
	n, size := g.weights(b)
	if err := g.count.Acquire(ctx, n); err != nil {
		return err
	}
	if err := g.bytes.Acquire(ctx, size); err != nil {
		g.count.Release(n)
		return err
	}
	return nil
}

func (g *gate) release(b ferry.Batch) {
	n, size := g.weights(b)
	g.count.Release(n)
	g.bytes.Release(size)
}
