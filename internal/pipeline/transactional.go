package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-cdc/ferry"
)

// This file is the pipeline's side of ferry.TransactionalSink: which
// source position a transactional Write reaches, and resuming a source
// from the position the sink committed.

// txnState tracks, for a sink worker whose sink is transactional, the
// deliveries of each source in admission (read) order, so that a Write
// can carry the position it completes.
type txnState struct {
	sink ferry.TransactionalSink
	// pending holds, per source key, the deliveries not yet known to be
	// settled, oldest first.
	pending map[string][]*delivery
	counts  map[*delivery]int // scratch: a Write's events per delivery
	through []ferry.SinkCheckpoint
}

func newTxnState(s ferry.Sink) *txnState {
	ts, ok := s.(ferry.TransactionalSink)
	if !ok {
		return nil
	}
	return &txnState{sink: ts, pending: map[string][]*delivery{}, counts: map[*delivery]int{}}
}

// admitted records d, in the order the worker receives deliveries, which
// is each source's read order.
func (t *txnState) admitted(d *delivery) {
	key := d.batch.t.l.key
	t.pending[key] = append(t.pending[key], d)
}

// reach returns, per source, the checkpoint of the newest batch that is
// settled once batch commits: every earlier delivery of that source is
// settled already or has all its remaining events in batch. A delivery
// whose events are held back (a failed key) stops the walk, so the
// position never passes an event that is not committed; batches routing
// nothing to this sink are not seen, so the position may lag behind the
// store's (the source then re-reads changes that produce nothing here).
func (t *txnState) reach(batch []attempt) []ferry.SinkCheckpoint {
	clear(t.counts)
	for i := range batch {
		t.counts[batch[i].d]++
	}
	t.through = t.through[:0]
	for key, q := range t.pending {
		// Drop what settled since the last Write (delivered, or
		// dead-lettered after an abort).
		for len(q) > 0 && q[0].unresolved == 0 {
			q[0] = nil
			q = q[1:]
		}
		t.pending[key] = q
		if len(q) == 0 {
			delete(t.pending, key)
			continue
		}
		var pos ferry.Position
		for _, d := range q {
			if d.unresolved-t.counts[d] != 0 {
				break
			}
			if d.batch.checkpoint != nil {
				pos = d.batch.checkpoint
			}
		}
		if pos != nil {
			t.through = append(t.through, ferry.SinkCheckpoint{Source: key, Position: pos})
		}
	}
	return t.through
}

// sinkFencedErr turns a transactional sink's fencing into the runtime's:
// the pipeline stops at once without settling more, as an HA leader that
// lost its lease does, rather than retry and take the identity back.
func sinkFencedErr(name string, err error) error {
	if !errors.Is(err, ferry.ErrSinkFenced) {
		return nil
	}
	return fmt.Errorf("%w: sink %s: %w", ErrFenced, name, err)
}

// storedPosition asks the transactional sinks for the position they
// committed for source key; at most one may have one (the configuration
// check refuses a source feeding a transactional sink and another sink).
func (r *Runtime) storedPosition(ctx context.Context, key string) (ferry.Position, string, error) {
	var (
		pos  ferry.Position
		from string
	)
	for _, w := range r.sinks {
		if w.txn == nil {
			continue
		}
		p, err := w.txn.sink.StoredPosition(ctx, key)
		if err != nil {
			return nil, "", sinkFailed(w.name, fmt.Errorf("read the position of source %s committed by sink %s: %w", key, w.name, err))
		}
		if p == nil {
			continue
		}
		if pos != nil && !bytes.Equal(pos, p) {
			return nil, "", fmt.Errorf("sinks %s and %s committed different positions for source %s", from, w.name, key)
		}
		pos, from = p, w.name
	}
	return pos, from, nil
}

// resumeFrom picks where source l opens: the position a transactional
// sink committed wins over the store's checkpoint (it is what the
// destination really holds), and is saved to the store so that
// `ferry checkpoint show` agrees.
func (r *Runtime) resumeFrom(ctx context.Context, l *sourceLoop, stored ferry.Position, ok bool) (ferry.Position, bool, error) {
	pos, sink, err := r.storedPosition(ctx, l.key)
	if err != nil || pos == nil {
		return stored, ok, err
	}
	if ok && bytes.Equal(pos, stored) {
		return stored, true, nil
	}
	l.log.Info("resuming from the position committed by the transactional sink", "sink", sink, "store_had_checkpoint", ok)
	if err := r.cfg.Checkpoints.SaveCheckpoint(ctx, l.key, pos); err != nil {
		return nil, false, sourceFailed(l.name, fmt.Errorf("save the position sink %s committed for source %s: %w", sink, l.name, err))
	}
	l.stats.setCheckpoint(pos, time.Now())
	return pos, true, nil
}
