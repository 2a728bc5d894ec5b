package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-cdc/ferry"
)

// errStopped is handed to the Ack of batches that were read but not settled
// when the pipeline stopped.
var errStopped = errors.New("pipeline stopped before the batch was delivered")

// batchState is one read batch on its way through the pipeline.
type batchState struct {
	changes    []ferry.Change
	checkpoint ferry.Position
	ack        ferry.AckFunc
	weight     int64
	size       int64 // of inBytes held
	// count is len(changes) when read: the transformer drops changes once
	// the events are built, but the counters release them at settle.
	count   int64
	pending atomic.Int32 // transformer token + one per sink delivery
	t       *tracker
}

// done releases one pending token; the last one settles the batch.
func (b *batchState) done() {
	if b.pending.Add(-1) == 0 {
		b.t.settled()
	}
}

// tracker releases settled batches strictly in read order: it persists the
// checkpoint of the newest batch whose predecessors are all settled, calls
// acks, and returns in-flight budget to the reader.
//
// Releasing runs on the goroutine that settled a batch (usually a sink
// worker, right after a Write) when no other release is under way: at a
// steady trickle of small transactions, waking the committer's goroutine
// for every Write cost a goroutine hand-off per transaction (issue 18).
// The committer's goroutine still persists checkpoints on its interval,
// and releases whatever a busy release left to it.
type tracker struct {
	l      *sourceLoop
	mu     sync.Mutex
	queue  []*batchState
	closed bool // no more pushes
	notify chan struct{}
	// hard is the run's context, for acks called by release; set before
	// the first push.
	hard context.Context

	// releasing serializes release; it guards the fields below it.
	releasing      sync.Mutex
	lastCheckpoint ferry.Position
	checkpoints    uint64 // settled batches with a checkpoint, ever
	saved          uint64 // checkpoints when the last save read lastCheckpoint
	lastSave       time.Time
}

func newTracker(l *sourceLoop) *tracker {
	return &tracker{l: l, notify: make(chan struct{}, 1)}
}

func (t *tracker) push(b ferry.Batch, weight, size int64) *batchState {
	bs := &batchState{changes: b.Changes, checkpoint: b.Checkpoint, ack: b.Ack, weight: weight, size: size, count: int64(len(b.Changes)), t: t}
	bs.pending.Store(1)
	t.mu.Lock()
	t.queue = append(t.queue, bs)
	t.mu.Unlock()
	return bs
}

func (t *tracker) closeInput() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wake()
}

func (t *tracker) wake() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// settled releases what a batch's settling made releasable, on the
// caller's goroutine, unless a release is under way: then the committer's
// goroutine is woken to look again, so no settle is missed. The
// committer is also woken when nothing is left after the input closed, so
// that it saves the last checkpoint and returns.
func (t *tracker) settled() {
	if !t.releasing.TryLock() {
		t.wake()
		return
	}
	finished := t.settle(t.hard)
	t.releasing.Unlock()
	if finished {
		t.wake()
	}
}

// run settles batches until the input is closed and drained, or hard is
// cancelled; it always tries to persist the last settled checkpoint.
func (t *tracker) run(hard context.Context) error {
	interval := t.l.rt.cfg.CheckpointInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	defer t.abandon()
	for {
		select {
		case <-t.notify:
		case <-ticker.C:
		case <-hard.Done():
			t.releasing.Lock()
			t.settle(context.Background())
			t.releasing.Unlock()
			return t.save(true)
		}
		t.releasing.Lock()
		finished := t.settle(hard)
		t.releasing.Unlock()
		if err := t.save(finished); err != nil {
			return err
		}
		if finished {
			return nil
		}
	}
}

// settle pops settled batches off the head of the queue; it reports whether
// the input is closed and nothing is left. t.releasing is held.
func (t *tracker) settle(ctx context.Context) bool {
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			finished := t.closed
			t.mu.Unlock()
			return finished
		}
		head := t.queue[0]
		if head.pending.Load() != 0 {
			t.mu.Unlock()
			return false
		}
		t.queue[0] = nil
		t.queue = t.queue[1:]
		t.mu.Unlock()

		if head.checkpoint != nil {
			t.lastCheckpoint = head.checkpoint
			t.checkpoints++
		}
		if head.ack != nil {
			if err := head.ack(ctx, nil); err != nil {
				t.l.log.Warn("source ack failed", "error", err)
			}
		}
		t.l.inFlight.Release(head.weight)
		t.l.inBytes.Release(head.size)
		t.l.stats.InFlight.Add(-head.count)
		t.l.stats.Released.Add(uint64(head.count))
	}
}

// save persists the last settled checkpoint when it changed and the interval
// elapsed, or unconditionally when force is set.
// Only the committer's goroutine saves; release may run meanwhile, so the
// checkpoint is read under t.releasing and written without it.
func (t *tracker) save(force bool) error {
	t.releasing.Lock()
	pos, n, last := t.lastCheckpoint, t.checkpoints, t.lastSave
	t.releasing.Unlock()
	if n == t.saved || (!force && time.Since(last) < t.l.rt.cfg.CheckpointInterval) {
		return nil
	}
	// A cancelled run context must not prevent the final save.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.l.rt.cfg.Checkpoints.SaveCheckpoint(ctx, t.l.key, pos); err != nil {
		return err
	}
	now := time.Now()
	t.releasing.Lock()
	t.saved, t.lastSave = n, now
	t.releasing.Unlock()
	t.l.stats.setCheckpoint(pos, now)
	return nil
}

// abandon tells the sources of unsettled batches that they were not
// delivered by this run.
func (t *tracker) abandon() {
	t.mu.Lock()
	rest := t.queue
	t.queue = nil
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, b := range rest {
		t.l.stats.InFlight.Add(-b.count)
		if b.ack != nil {
			_ = b.ack(ctx, errStopped)
		}
	}
	if len(rest) > 0 {
		t.l.log.Warn("stopped with undelivered batches; they will be read again on restart", "batches", len(rest))
	}
}
