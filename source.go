package ferry

import "context"

// Position is an opaque, source-specific place in a source's stream from
// which the source can resume. Only the source that produced it interprets it;
// the pipeline stores and hands it back byte for byte.
type Position []byte

// AckFunc is called by the pipeline exactly once per batch that has an Ack.
// With err == nil it means every change of the batch (and of every batch read
// before it) was delivered to all its sinks or dead-lettered. A non-nil err
// means the pipeline stopped before that could happen; the source must then
// expect the batch to be read again after a restart. AckFunc is called from a
// single goroutine, in the order the batches were read.
type AckFunc func(ctx context.Context, err error) error

// Batch is what one Read returns.
type Batch struct {
	Changes []Change
	// Checkpoint, when non-nil, is the position from which the source resumes
	// having emitted exactly the changes of this batch and all earlier ones:
	// for a binlog it is set only on batches that end a transaction. The
	// pipeline persists it once the batch is fully acknowledged.
	Checkpoint Position
	// Ack is optional; see AckFunc.
	Ack AckFunc
	// Size is BatchSize(Changes) when the source has it at hand (it sized
	// each change while buffering it), else 0 and SizeOfChanges computes
	// it: the pipeline and the source's own bounds need it for every batch,
	// and summing every value's length again was 3 % of a bulk load's CPU.
	Size int64
}

// SizeOfChanges returns b.Size, or BatchSize(b.Changes) when it is not set.
func (b *Batch) SizeOfChanges() int64 {
	if b.Size > 0 || len(b.Changes) == 0 {
		return b.Size
	}
	return BatchSize(b.Changes)
}

// Source produces batches of changes.
//
// Lifecycle: Open is called once, with the last persisted checkpoint or nil
// to begin where the source's configuration says. Read is then called
// repeatedly from a single goroutine; it blocks until at least one change or a
// checkpoint is available, and must return promptly with ctx.Err() when ctx is
// cancelled. Transient trouble (a dropped connection) is the source's to
// retry; an error from Read means the source cannot go on, except
// ErrEndOfInput, which ends a finite source cleanly. Close is called once,
// after the last Read returned, and releases every resource Open took.
type Source interface {
	Open(ctx context.Context, from Position) error
	Read(ctx context.Context) (Batch, error)
	Close(ctx context.Context) error
}

// StartPositioner is implemented by sources whose configured start becomes
// a concrete position only when they open (a binlog's `latest`). After
// Open(ctx, nil) succeeds the pipeline persists StartPosition, when non-nil,
// before the first Read, so a stop before anything was delivered resumes
// where this run began instead of resolving the start again and skipping
// what was written in between. It returns nil after Open with a checkpoint.
type StartPositioner interface {
	StartPosition() Position
}

// PositionCodec converts positions between their stored form and the text
// users type and read (`ferry checkpoint show|set`). Source types implement it.
type PositionCodec interface {
	ParsePosition(text string) (Position, error)
	FormatPosition(p Position) (string, error)
}
