package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// entry is one event on its way to one or more sinks. Entries are shared
// between the sinks an event is routed to, so per-sink state lives in the
// sink worker, not here.
type entry struct {
	event  *event.Event
	rule   string
	source string
	// committed is when the change was committed (a request received);
	// zero leaves the event out of the delivery latency.
	committed time.Time
}

// delivery is the part of one batch routed to one sink.
type delivery struct {
	entries    []*entry
	batch      *batchState
	unresolved int // entries neither acknowledged nor dead-lettered yet
}

// resolve marks one entry of d as settled; the last one releases d's batch
// token, so a batch settles as soon as its own events are through even when
// it shares a Write with later, still failing batches.
func (d *delivery) resolve() {
	d.unresolved--
	if d.unresolved == 0 {
		d.batch.done()
	}
}

// attempt is an entry inside one sink worker, with its retry count.
type attempt struct {
	*entry
	d     *delivery
	tries int
	span  tracectx.Span // nil unless the event is traced
}

type sinkWorker struct {
	// mu serializes Writes to the sink: its own, and dead letters other
	// workers send it when it is the dead-letter sink.
	mu     sync.Mutex
	rt     *Runtime
	name   string
	sink   ferry.Sink
	retry  RetryPolicy
	in     chan *delivery
	log    *slog.Logger
	stats  *SinkStats
	opened bool
	tracer SinkTracer      // nil: no tracing
	spans  []tracectx.Span // reused by traceContext
}

func newSinkWorker(rt *Runtime, spec SinkSpec) *sinkWorker {
	return &sinkWorker{
		rt:     rt,
		name:   spec.Name,
		sink:   spec.Sink,
		retry:  spec.Retry.withDefaults(),
		in:     make(chan *delivery, 64),
		log:    rt.log.With("sink", spec.Name),
		stats:  rt.stats.sink(spec.Name),
		tracer: sinkTracer(rt.cfg.Tracer, spec.Name),
	}
}

func (w *sinkWorker) submit(ctx context.Context, d *delivery) {
	select {
	case w.in <- d:
		w.stats.Buffered.Add(int64(len(d.entries)))
	case <-ctx.Done():
	}
}

// run delivers until in is closed, or ctx is cancelled. It coalesces queued
// deliveries into one Write of up to MaxSinkBatch events. A non-nil error is
// fatal: a dead letter could not be stored, so nothing can be released.
func (w *sinkWorker) run(ctx context.Context) error {
	max := w.rt.cfg.MaxSinkBatch
	var batch []attempt
	for {
		batch = batch[:0]
		var d *delivery
		var ok bool
		select {
		case d, ok = <-w.in:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		for {
			d.unresolved = len(d.entries)
			for _, e := range d.entries {
				batch = append(batch, attempt{entry: e, d: d})
			}
			if len(batch) >= max || !w.next(&d) {
				break
			}
		}
		delivered, err := w.deliver(ctx, batch)
		if err != nil {
			return err
		}
		if !delivered {
			return nil // stopping: unsettled batches are read again after a restart
		}
	}
}

// next takes another queued delivery without waiting.
func (w *sinkWorker) next(d **delivery) bool {
	select {
	case nd, ok := <-w.in:
		if !ok {
			return false
		}
		*d = nd
		return true
	default:
		return false
	}
}

// deliver writes batch until every event is acknowledged or dead-lettered.
// It returns false when ctx ended first.
func (w *sinkWorker) deliver(ctx context.Context, batch []attempt) (bool, error) {
	pending := batch
	w.startSpans(ctx, batch)
	events := make([]*event.Event, 0, len(batch))
	for round := 1; ; round++ {
		events = events[:0]
		for i := range pending {
			pending[i].tries++
			events = append(events, pending[i].event)
		}
		start := time.Now()
		err := w.write(w.traceContext(ctx, pending), w, events)
		w.stats.observeWrite(time.Since(start))
		if errors.Is(err, ErrFenced) {
			w.endSpans(pending, err)
			return false, err
		}
		if err == nil {
			w.acknowledged(pending)
			w.stats.observeOutcome(nil, true)
			w.endSpans(pending, nil)
			resolveAll(pending)
			return true, nil
		}
		if ctx.Err() != nil {
			w.endSpans(pending, ctx.Err())
			return false, nil
		}
		w.stats.Failures.Add(1)
		retry, retryErrs, dead, delivered := w.classify(pending, err)
		w.stats.observeOutcome(err, len(delivered) > 0 || len(dead) > 0)
		w.acknowledged(delivered)
		if err := w.deadLetter(ctx, dead); err != nil {
			return false, err
		}
		resolveAll(delivered)
		w.endSpans(delivered, nil)
		for _, f := range dead {
			w.endSpan(f.attempt, f.err)
			f.d.resolve()
		}
		w.stats.Buffered.Add(-int64(len(dead)))
		if len(retry) == 0 {
			return true, nil
		}
		w.stats.Retries.Add(uint64(len(retry)))
		delay := w.retry.delay(round, err, retryErrs)
		w.log.Warn("delivery failed; retrying", "failed", len(retry), "of", len(pending),
			"attempt", round, "retry_in", delay.String(), "error", err)
		if !sleep(ctx, delay) {
			w.endSpans(retry, ctx.Err())
			return false, nil
		}
		pending = retry
	}
}

// acknowledged counts events the sink acknowledged and their latency.
func (w *sinkWorker) acknowledged(as []attempt) {
	if len(as) == 0 {
		return
	}
	now := time.Now()
	for _, a := range as {
		if !a.committed.IsZero() {
			w.stats.Latency.Observe(now.Sub(a.committed))
		}
	}
	w.stats.Delivered.Add(uint64(len(as)))
	w.stats.Buffered.Add(-int64(len(as)))
}

// failure is an attempt that failed, with its error.
type failure struct {
	attempt
	err error
}

func resolveAll(as []attempt) {
	for _, a := range as {
		a.d.resolve()
	}
}

// classify splits the attempts of a failed Write into those acknowledged,
// those to retry, and those to dead-letter (permanent errors, exhausted
// retry budget).
func (w *sinkWorker) classify(pending []attempt, err error) (retry []attempt, retryErrs []error, dead []failure, delivered []attempt) {
	var be *ferry.BatchError
	isBatch := errors.As(err, &be)
	for i, a := range pending {
		ferr := err
		if isBatch {
			if ferr = be.Failed(i); ferr == nil {
				delivered = append(delivered, a)
				continue
			}
		}
		switch {
		case ferry.IsPermanent(ferr):
			dead = append(dead, failure{a, ferr})
		case w.retry.MaxAttempts > 0 && a.tries >= w.retry.MaxAttempts:
			dead = append(dead, failure{a, fmt.Errorf("gave up after %d attempts: %w", a.tries, ferr)})
		default:
			retry = append(retry, a)
			retryErrs = append(retryErrs, ferr)
		}
	}
	return retry, retryErrs, dead, delivered
}

// deadLetter stores failures durably; until it succeeds their batches cannot
// be released, so it retries storage errors until ctx ends.
func (w *sinkWorker) deadLetter(ctx context.Context, dead []failure) error {
	if len(dead) == 0 {
		return nil
	}
	dead = w.toDeadLetterSink(ctx, dead)
	if len(dead) == 0 {
		return nil
	}
	if err := w.rt.checkFence(ctx); err != nil {
		return err // a deposed leader stores none: its successor decides
	}
	letters := make([]state.DeadLetter, len(dead))
	now := time.Now().UTC()
	for i, f := range dead {
		body, err := json.Marshal(f.event)
		if err != nil {
			body, _ = json.Marshal(map[string]string{"id": f.event.ID(), "marshal_error": err.Error()})
		}
		letters[i] = state.DeadLetter{Time: now, Source: f.source, Sink: w.name, Rule: f.rule,
			EventID: f.event.ID(), Event: body, Error: f.err.Error(), Attempts: f.tries}
		w.log.Error("event dead-lettered", "id", f.event.ID(), "attempts", f.tries, "error", f.err)
	}
	if err := w.rt.cfg.Store.PutDeadLetters(ctx, letters); err != nil {
		return fmt.Errorf("sink %s: %w", w.name, err)
	}
	w.stats.DeadLettered.Add(uint64(len(dead)))
	return nil
}

// toDeadLetterSink sends dead letters to the configured dead-letter sink
// (the event, with why and after how many attempts as extensions) and
// returns those it did not accept, for the store. A sink's own dead
// letters never go back to it.
func (w *sinkWorker) toDeadLetterSink(ctx context.Context, dead []failure) []failure {
	target := w.rt.sinks[w.rt.cfg.DeadLetterSink]
	if target == nil || target == w {
		return dead
	}
	events := make([]*event.Event, len(dead))
	for i, f := range dead {
		e := f.event.Clone()
		e.SetExtension("deadlettersink", w.name)
		e.SetExtension("deadlettererror", f.err.Error())
		e.SetExtension("deadletterattempts", int32(f.tries))
		events[i] = &e
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := w.write(wctx, target, events)
	if err == nil {
		w.stats.DeadLettered.Add(uint64(len(dead)))
		return nil
	}
	if errors.Is(err, ErrFenced) {
		return dead // nothing was sent; deadLetter stops at the fence too
	}
	var be *ferry.BatchError
	var rest []failure
	for i, f := range dead {
		if !errors.As(err, &be) || be.Failed(i) != nil {
			rest = append(rest, f)
		}
	}
	w.stats.DeadLettered.Add(uint64(len(dead) - len(rest)))
	w.log.Warn("dead-letter sink refused some dead letters; storing them", "dead_letter_sink", target.name, "count", len(rest), "error", err)
	return rest
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
