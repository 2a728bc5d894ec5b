package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/transform"
)

// sourceLoop moves one source's batches through the pipeline.
type sourceLoop struct {
	rt          *Runtime
	name        string
	key         string // checkpoint and stats key
	src         ferry.Source
	log         *slog.Logger
	inFlight    *semaphore.Weighted
	maxInFlight int64
	inBytes     *semaphore.Weighted // the same changes, by size
	maxInBytes  int64
	tracker     *tracker
	toTransform chan *batchState
	stats       *SourceStats
}

func newSourceLoop(rt *Runtime, spec SourceSpec) *sourceLoop {
	if spec.Key == "" {
		spec.Key = spec.Name
	}
	l := &sourceLoop{
		rt:          rt,
		name:        spec.Name,
		key:         spec.Key,
		src:         spec.Source,
		log:         rt.log.With("source", spec.Name),
		inFlight:    semaphore.NewWeighted(int64(rt.cfg.MaxInFlight)),
		maxInFlight: int64(rt.cfg.MaxInFlight),
		inBytes:     semaphore.NewWeighted(rt.cfg.MaxInFlightBytes),
		maxInBytes:  rt.cfg.MaxInFlightBytes,
		toTransform: make(chan *batchState, 16),
		stats:       rt.stats.source(spec.Key),
	}
	l.tracker = newTracker(l)
	return l
}

// run blocks until the source ended or failed (soft) and the batches read so
// far are settled, or until hard is cancelled. fail stops the whole
// runtime; the reader calls it when the source fails, the transformer when
// it cannot go on.
func (l *sourceLoop) run(soft, hard context.Context, fail func(error)) error {
	var wg sync.WaitGroup
	var readErr error
	l.tracker.hard = hard
	wg.Go(func() {
		defer close(l.toTransform)
		defer l.tracker.closeInput()
		readErr = l.read(soft, hard)
		if readErr != nil {
			// Stop the runtime now, not when this loop returns: the drain
			// of what is in flight is bounded by ShutdownTimeout only once
			// soft is cancelled, and a refusing sink would keep it waiting.
			fail(sourceFailed(l.name, readErr))
		}
	})
	wg.Go(func() {
		if err := l.transform(hard); err != nil {
			fail(sourceFailed(l.name, err))
			for range l.toTransform { // keep the reader from blocking until it stops
			}
		}
	})
	commitErr := l.tracker.run(hard)
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	return commitErr
}

func (l *sourceLoop) read(soft, hard context.Context) error {
	for {
		b, err := l.src.Read(soft)
		if err != nil {
			if errors.Is(err, ferry.ErrEndOfInput) || soft.Err() != nil {
				return nil
			}
			return fmt.Errorf("source %s: %w", l.name, err)
		}
		weight := min(int64(len(b.Changes)), l.maxInFlight)
		if err := l.inFlight.Acquire(hard, weight); err != nil {
			return nil
		}
		size := min(b.SizeOfChanges(), l.maxInBytes)
		if err := l.inBytes.Acquire(hard, size); err != nil {
			l.inFlight.Release(weight)
			return nil
		}
		l.stats.Read.Add(uint64(len(b.Changes)))
		l.stats.InFlight.Add(int64(len(b.Changes)))
		bs := l.tracker.push(b, weight, size)
		select {
		case l.toTransform <- bs:
		case <-hard.Done():
			return nil
		}
	}
}

// transform turns each batch into per-sink deliveries (see transformer).
func (l *sourceLoop) transform(hard context.Context) error {
	t := newTransformer(l, transformWorkers())
	for bs := range l.toTransform {
		if err := t.batch(hard, bs); err != nil {
			return err
		}
	}
	return nil
}

// capture writes the batch's changes as sample lines when capture is on.
// A capture that cannot be written is logged, never fatal: it is a
// debugging aid, not part of delivery.
func (l *sourceLoop) capture(buf []byte, changes []ferry.Change) []byte {
	w := l.rt.cfg.Capture
	if w == nil || len(changes) == 0 {
		return buf
	}
	for i := range changes {
		buf = transform.AppendSample(buf, &changes[i])
		buf = append(buf, '\n')
	}
	l.rt.captureMu.Lock()
	_, err := w.Write(buf)
	l.rt.captureMu.Unlock()
	if err != nil {
		l.log.Warn("cannot write captured changes", "error", err)
	}
	return buf
}

// invalid dead-letters a change its source could not decode, with the
// source's reason, like a rule failure without a rule.
func (l *sourceLoop) invalid(ctx context.Context, c *ferry.Change) error {
	l.log.Error("input not decodable; dead-lettering it", "id", c.ID, "error", c.Invalid)
	l.stats.RuleFailures.Add(1)
	if err := l.rt.deadLetterChange(ctx, l.name, "", c, c.Invalid); err != nil {
		return fmt.Errorf("source %s: store dead letter of change %s: %w", l.name, c.ID, err)
	}
	return nil
}

// ruleFailed dead-letters the change a rule failed on. The batch cannot be
// released unless that is stored, so a storage failure is fatal.
func (l *sourceLoop) ruleFailed(ctx context.Context, c *ferry.Change, o transform.Output) error {
	l.log.Error("rule failed; dead-lettering the change", "rule", o.Rule, "id", c.ID, "table", c.DB+"."+c.Table, "error", o.Err)
	l.stats.RuleFailures.Add(1)
	if err := l.rt.deadLetterChange(ctx, l.name, o.Rule, c, o.Err); err != nil {
		return fmt.Errorf("source %s: store dead letter of change %s: %w", l.name, c.ID, err)
	}
	return nil
}
