package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
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

// attempt is an entry inside one sink worker, with its ordering key and
// retry count.
type attempt struct {
	*entry
	d     *delivery
	key   string // ferry.OrderingKey of the event
	tries int
	span  tracectx.Span // nil unless the event is traced
}

// ConcurrencyReporter is implemented by sinks whose parallelism varies
// (the HTTP sink's adaptive concurrency). The sink worker reads it after
// each Write, from its own goroutine, into SinkStats.Concurrency.
type ConcurrencyReporter interface {
	// Concurrency returns how many requests the next Write runs in
	// parallel at most.
	Concurrency() int
}

type sinkWorker struct {
	rt    *Runtime
	name  string
	sink  ferry.Sink
	retry RetryPolicy
	in    chan *delivery
	// letters carries other workers' dead letters when this is the
	// dead-letter sink; stopped is closed when run returns, so that they
	// store their letters instead of waiting.
	letters chan *letterBatch
	stopped chan struct{}
	log     *slog.Logger
	stats   *SinkStats
	opened  bool
	tracer  SinkTracer      // nil: no tracing
	txn     *txnState       // nil unless the sink is a ferry.TransactionalSink
	spans   []tracectx.Span // reused by traceContext

	// Run's goroutine only:
	held   *holdBack
	stalls int       // consecutive Writes in which no event made progress
	pause  time.Time // no Write before this, after a Write without progress
	events []*event.Event
	out    outcomes
	// wrote is when the last Write returned: linger waits only for a
	// delivery that came soon after it (see gather).
	wrote time.Time
	// failedSinceLog counts events failed since lastFailLog.
	failedSinceLog int
	lastFailLog    time.Time
}

func newSinkWorker(rt *Runtime, spec SinkSpec) *sinkWorker {
	if c, ok := spec.Sink.(ConcurrencyReporter); ok {
		rt.stats.sink(spec.Name).Concurrency.Store(int64(c.Concurrency()))
	}
	rt.stats.sink(spec.Name).readRateLimit(spec.Sink)
	return &sinkWorker{
		rt:      rt,
		name:    spec.Name,
		sink:    spec.Sink,
		retry:   spec.Retry.WithDefaults(),
		in:      make(chan *delivery, 64),
		letters: make(chan *letterBatch),
		stopped: make(chan struct{}),
		log:     rt.log.With("sink", spec.Name),
		stats:   rt.stats.sink(spec.Name),
		tracer:  sinkTracer(rt.cfg.Tracer, spec.Name),
		held:    newHoldBack(),
		txn:     newTxnState(spec.Sink),
		out:     outcomes{keys: map[string]*keyOutcome{}},
	}
}

func (w *sinkWorker) submit(ctx context.Context, d *delivery) {
	select {
	case w.in <- d:
		w.stats.Buffered.Add(int64(len(d.entries)))
	case <-ctx.Done():
	}
}

// run delivers until in is closed and nothing is held back, or ctx is
// cancelled. Each round writes the held-back keys that are due and the
// deliveries queued meanwhile, up to MaxSinkBatch events, in one Write. A
// non-nil error is fatal: a dead letter could not be stored, so nothing can
// be released.
func (w *sinkWorker) run(ctx context.Context) error {
	defer close(w.stopped)
	defer w.abandon(ctx)
	open := true
	var batch []attempt
	for open || !w.held.empty() {
		var ok bool
		if batch, open, ok = w.gather(ctx, batch[:0], open); !ok {
			return nil // stopping: unsettled batches are read again after a restart
		}
		if len(batch) == 0 {
			continue
		}
		if err := w.deliver(ctx, batch); err != nil {
			return err
		}
		// The array is reused: settled events must not stay reachable
		// from it, beyond max_in_flight_bytes, until overwritten.
		clear(batch)
	}
	return nil
}

// gather waits until there is something to write (a new delivery, or a
// held-back key coming due) and returns it with whatever else is ready. It
// reports whether in is still open, and ok false when ctx ended.
func (w *sinkWorker) gather(ctx context.Context, batch []attempt, open bool) (_ []attempt, stillOpen, ok bool) {
	if !w.pause.IsZero() && !w.waitPause(ctx) {
		return batch, open, false
	}
	w.serveLetters(ctx)
	max := w.rt.cfg.MaxSinkBatch
	batch = w.held.takeDue(time.Now(), w.coalesce(), batch, max)
	// frequent: deliveries come more often than the linger (they queued
	// during the last Write, or the first came within the linger of its
	// end), so waiting for the next ones is worth it; a lone change (one
	// a second) is never held.
	linger := w.rt.cfg.SinkLinger
	frequent := len(w.in) > 0
	if len(batch) == 0 {
		var timer <-chan time.Time
		if due, held := w.held.nextDue(); held {
			t := time.NewTimer(time.Until(due))
			defer t.Stop()
			timer = t.C
		}
		in := w.in
		if !open {
			in = nil
		}
		select {
		case d, more := <-in:
			if !more {
				return batch, false, true
			}
			batch = w.admit(ctx, batch, d)
			frequent = linger > 0 && time.Since(w.wrote) < linger
		case <-timer:
			return w.held.takeDue(time.Now(), w.coalesce(), batch, max), open, true
		case lb := <-w.letters:
			w.writeLetters(ctx, lb)
			return batch, open, true // the caller gathers again
		case <-ctx.Done():
			return batch, open, false
		}
	}
	for open && len(batch) < max {
		select {
		case d, more := <-w.in:
			if !more {
				return batch, false, true
			}
			batch = w.admit(ctx, batch, d)
			continue
		default:
		}
		break
	}
	if linger > 0 && frequent && open && len(batch) > 0 && len(batch) < max {
		batch, open = w.linger(ctx, batch, max, linger)
	}
	return batch, open, true
}

// linger sleeps d, then takes what was queued meanwhile, so that it
// shares this Write: at a steady trickle of single-row transactions a
// Write per transaction (a produce round trip, an HTTP request) costs far
// more CPU than the events themselves (issue 18). It does not wake for
// each delivery (a wake-up per transaction is the cost it saves); the
// queue holds 64 deliveries, and a full one makes the transformer wait
// at most d. Order is unchanged: deliveries are admitted in the order
// they arrived, as without it.
func (w *sinkWorker) linger(ctx context.Context, batch []attempt, max int, d time.Duration) (_ []attempt, stillOpen bool) {
	if !sleep(ctx, d) {
		return batch, true
	}
	for len(batch) < max {
		select {
		case dl, more := <-w.in:
			if !more {
				return batch, false
			}
			batch = w.admit(ctx, batch, dl)
		default:
			return batch, true
		}
	}
	return batch, true
}

// coalesce is how early a held key (without a Retry-After) may be retried
// to share a Write with keys due now: keys that failed together come due
// spread by the jitter, and a Write per key would cost a round trip each.
func (w *sinkWorker) coalesce() time.Duration { return w.retry.InitialBackoff / 2 }

// admit turns a delivery into attempts: those of a held-back key queue
// behind it, the others join batch.
func (w *sinkWorker) admit(ctx context.Context, batch []attempt, d *delivery) []attempt {
	d.unresolved = len(d.entries)
	if w.txn != nil {
		w.txn.admitted(d)
	}
	for _, e := range d.entries {
		a := attempt{entry: e, d: d, key: ferry.OrderingKey(e.event)}
		if w.tracer != nil {
			a.span = w.tracer.Start(ctx, e.event)
		}
		if !w.held.admit(a) {
			batch = append(batch, a)
		}
	}
	return batch
}

// deliver writes batch once and settles each event: acknowledged,
// dead-lettered, or held back for a retry of its key.
func (w *sinkWorker) deliver(ctx context.Context, batch []attempt) error {
	for i := range batch {
		batch[i].tries++
	}
	err := w.write(ctx, batch)
	if ferr := sinkFencedErr(w.name, err); ferr != nil {
		w.log.Error("sink fenced: another instance took over its identity; this sink stops delivering and the pipeline stops", "error", err)
		err = ferr
	}
	if errors.Is(err, ErrFenced) {
		w.endSpans(batch, err)
		return err // deposed: nothing more is settled, the successor re-delivers
	}
	if err != nil && ctx.Err() != nil {
		w.endSpans(batch, ctx.Err())
		return nil // stopping: the events stay unsettled and are read again
	}
	o := w.outcomes(batch, err)
	if err == nil {
		w.stats.observeOutcome(nil, true)
	} else {
		w.stats.Failures.Add(1)
		w.stats.observeOutcome(err, len(o.delivered) > 0 || len(o.dead) > 0)
	}
	w.acknowledged(o.delivered)
	resolveAll(o.delivered)
	w.endSpans(o.delivered, nil)
	if err := w.deadLetter(ctx, o.dead); err != nil {
		return err
	}
	for _, f := range o.dead {
		w.endSpan(f.attempt, f.err)
		f.d.resolve()
	}
	w.stats.Buffered.Add(-int64(len(o.dead)))
	now := time.Now()
	// While the sink as a whole makes progress (this Write, or one of the
	// last few: a small Write of retries may fail whole on a flaky
	// destination), a key's failure is its bad luck and retries soon; only
	// a stalled sink backs its keys off for longer.
	delay := w.retry.Delay
	if len(o.delivered) > 0 || w.stalls < stallWrites-1 {
		delay = flowingDelay(w.retry)
	}
	for key, ko := range o.keys {
		w.held.settle(key, ko, now, delay)
	}
	if len(o.keys) > 0 {
		keys, since := w.held.failing()
		w.stats.observeHeld(keys, w.held.held, since)
	}
	w.noteProgress(o, batch, now)
	w.logFailures(o, now)
	return nil
}

// logFailures logs transient failures once per failureLogEvery at most,
// with what failed since the last line: a flaky destination failing one
// request in five must not write a line per request (the sinks log each
// one at debug level).
func (w *sinkWorker) logFailures(o *outcomes, now time.Time) {
	if o.firstErr == nil {
		return
	}
	w.failedSinceLog += o.retried
	if now.Sub(w.lastFailLog) < failureLogEvery {
		return
	}
	keys, _ := w.held.failing()
	w.log.Warn("delivery failed for some events; their keys are held back and retried, other keys go on",
		"failed_events", w.failedSinceLog, "failing_keys", keys, "held", w.held.held, "error", o.firstErr)
	w.failedSinceLog, w.lastFailLog = 0, now
}

// failureLogEvery spaces the lines logFailures writes.
const failureLogEvery = 5 * time.Second

// write makes the one sink.Write call of a round.
func (w *sinkWorker) write(ctx context.Context, batch []attempt) error {
	w.events = w.events[:0]
	for i := range batch {
		w.events = append(w.events, batch[i].event)
	}
	start := time.Now()
	var err error
	if w.txn != nil {
		err = w.fencedWriteAt(w.traceContext(ctx, batch), w.events, w.txn.reach(batch))
	} else {
		err = w.fencedWrite(w.traceContext(ctx, batch), w.events)
	}
	clear(w.events) // reused: see run
	w.wrote = time.Now()
	w.stats.observeWrite(w.wrote.Sub(start))
	if c, ok := w.sink.(ConcurrencyReporter); ok {
		w.stats.Concurrency.Store(int64(c.Concurrency()))
	}
	w.stats.readRateLimit(w.sink)
	return err
}

// noteProgress pauses the whole sink after stallWrites Writes in a row in
// which nothing made progress (an outage, or a destination throttling
// everything), with the backoff of a key, so that the held keys do not each
// probe it; any progress lifts the pause. A single failed Write does not
// pause: on a flaky destination the other keys go on at full speed.
func (w *sinkWorker) noteProgress(o *outcomes, batch []attempt, now time.Time) {
	if len(o.delivered) > 0 || len(o.dead) > 0 || o.retried == 0 {
		w.stalls, w.pause = 0, time.Time{}
		return
	}
	w.stalls++
	if w.stalls < stallWrites {
		return
	}
	w.pause = now.Add(w.retry.Delay(w.stalls-stallWrites+1, o.firstErr))
	w.log.Warn("delivery failed; retrying", "failed", o.retried, "of", len(batch),
		"stalled_writes", w.stalls, "retry_in", time.Until(w.pause).Round(time.Millisecond).String(), "error", o.firstErr)
}

// stallWrites is how many Writes in a row without progress pause the sink.
const stallWrites = 3

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

// outcomes is what one Write did, event by event and key by key. The
// worker reuses one, so a Write that fully succeeds allocates nothing.
type outcomes struct {
	delivered []attempt
	dead      []failure
	keys      map[string]*keyOutcome // the keys that failed or were held
	retried   int                    // events to retry
	overtook  int                    // events delivered after their key failed
	firstErr  error                  // the first transient error
}

func (o *outcomes) reset() {
	o.delivered, o.dead = o.delivered[:0], o.dead[:0]
	clear(o.keys)
	o.retried, o.overtook, o.firstErr = 0, 0, nil
}

// key returns the outcome of key, creating it.
func (o *outcomes) key(key string) *keyOutcome {
	ko := o.keys[key]
	if ko == nil {
		ko = &keyOutcome{}
		o.keys[key] = ko
	}
	return ko
}

// outcomes applies the one same-key rule to a Write's result: after an
// event fails transiently, it and every later event of its key are retried
// in order, whatever the sink said about them; permanent failures and
// exhausted retry budgets are dead-lettered, and their key goes on.
func (w *sinkWorker) outcomes(batch []attempt, err error) *outcomes {
	o := &w.out
	o.reset()
	if err == nil {
		o.delivered = append(o.delivered, batch...)
		if !w.held.empty() {
			for _, a := range batch {
				if w.held.keys[a.key] != nil {
					o.key(a.key).progress = true
				}
			}
		}
		return o
	}
	var be *ferry.BatchError
	isBatch := errors.As(err, &be)
	for i, a := range batch {
		ko := o.key(a.key)
		ferr := err
		if isBatch {
			ferr = be.Failed(i)
		}
		if ferry.IsNotAttempted(ferr) {
			a.tries--
		}
		switch {
		case ko.failed && ferr == nil:
			// The sink sent it after an earlier event of its key failed
			// (a sink that does not keep order, like Kafka with key:
			// none); it cannot be taken back.
			o.delivered = append(o.delivered, a)
			o.overtook++
		case ko.failed || ferry.IsNotAttempted(ferr):
			ko.retry = append(ko.retry, a)
		case ferr == nil:
			o.delivered = append(o.delivered, a)
			ko.progress = true
		case ferry.IsPermanent(ferr):
			o.dead = append(o.dead, failure{a, ferr})
			ko.progress = true
		case w.retry.MaxAttempts > 0 && a.tries >= w.retry.MaxAttempts:
			o.dead = append(o.dead, failure{a, fmt.Errorf("gave up after %d attempts: %w", a.tries, ferr)})
			ko.progress = true
		default:
			ko.retry = append(ko.retry, a)
			ko.failed, ko.err = true, ferr
			if o.firstErr == nil {
				o.firstErr = ferr
			}
		}
	}
	for _, ko := range o.keys {
		o.retried += len(ko.retry)
	}
	w.stats.Retries.Add(uint64(o.retried))
	if o.overtook > 0 {
		w.log.Warn("sink delivered events after an earlier event of their key failed; their key's order is not kept", "events", o.overtook)
	}
	return o
}

// abandon ends the spans of the events still held when the worker stops;
// their batches stay unsettled and are read again after a restart.
func (w *sinkWorker) abandon(ctx context.Context) {
	held := w.held.drain()
	if len(held) == 0 {
		return
	}
	cause := ctx.Err()
	if cause == nil {
		cause = errStopped
	}
	w.endSpans(held, cause)
	w.log.Warn("stopped with events held back for retry", "events", len(held))
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
