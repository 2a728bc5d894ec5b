package pipeline

import (
	"context"
	"runtime"
	"sync"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/transform"
)

// parallelMin is the smallest batch whose changes are transformed on
// several goroutines. Below it the hand-off costs more than it saves, and
// single-row transactions (most of a steady trickle) stay on one goroutine.
const parallelMin = 256

// transformer is the state of one source's transform stage. A batch is
// transformed in two steps: the rules and the default mapping run over
// contiguous parts of it, in parallel when it is large (the mapping is
// most of the stage's CPU, issue 18); then the transformer's own goroutine
// walks the outputs in change order to dead-letter, route and submit them,
// so order and side effects are those of a single pass.
type transformer struct {
	l       *sourceLoop
	parts   []part // parts[0] runs on the transformer's goroutine
	perSink map[string][]*entry
	capture []byte
	// Entries are carved from blocks: one allocation per batch, not one
	// per event. Small batches share a block of 16, so an event held back
	// for a retry keeps at most 15 delivered neighbours' entries reachable
	// (small events only: see largeEvent).
	block []entry
}

// part holds the outputs of one contiguous run of a batch's changes.
type part struct {
	w    *transform.Worker
	outs []transform.Output
	ends []int // ends[i] is len(outs) after the part's i-th change
}

func newTransformer(l *sourceLoop, workers int) *transformer {
	t := &transformer{l: l, parts: make([]part, max(workers, 1)), perSink: map[string][]*entry{}}
	for i := range t.parts {
		t.parts[i].w = l.rt.cfg.Engine.NewWorker()
	}
	return t
}

// transformWorkers is how many goroutines share a large batch's transform.
func transformWorkers() int { return runtime.GOMAXPROCS(0) }

// apply computes the outputs of changes (none for a change its source
// could not decode).
func (p *part) apply(changes []ferry.Change) {
	p.outs, p.ends = p.outs[:0], p.ends[:0]
	for i := range changes {
		if changes[i].Invalid == nil {
			p.outs = p.w.Apply(&changes[i], p.outs)
		}
		p.ends = append(p.ends, len(p.outs))
	}
}

// apply transforms changes, split into parts run in parallel when there
// are enough of them, and returns the parts in change order.
func (t *transformer) apply(changes []ferry.Change) []part {
	n := min(len(t.parts), len(changes)/(parallelMin/2))
	if len(changes) < parallelMin || n <= 1 {
		t.parts[0].apply(changes)
		return t.parts[:1]
	}
	per := (len(changes) + n - 1) / n
	var wg sync.WaitGroup
	for k := 1; k < n; k++ {
		p, run := &t.parts[k], changes[k*per:min((k+1)*per, len(changes))]
		wg.Go(func() { p.apply(run) })
	}
	t.parts[0].apply(changes[:per])
	wg.Wait()
	return t.parts[:n]
}

// batch transforms bs and hands its events to their sinks. A batch stays
// pending until the transformer handed it to every sink (its own token)
// and every sink delivered its part.
func (t *transformer) batch(ctx context.Context, bs *batchState) error {
	t.capture = t.l.capture(t.capture[:0], bs.changes)
	i := 0
	for _, p := range t.apply(bs.changes) {
		start := 0
		for _, end := range p.ends {
			if err := t.route(ctx, bs.changes[i:], p.outs[start:end]); err != nil {
				return err
			}
			start = end
			i++
		}
		clear(p.outs) // the sinks hold the events; do not keep them here
	}
	bs.changes = nil // the events hold what sinks need; let the rows go
	bs.pending.Add(int32(len(t.perSink)))
	for sink, entries := range t.perSink {
		t.l.rt.sinks[sink].submit(ctx, &delivery{entries: entries, batch: bs})
	}
	clear(t.perSink) // the sinks hold the entries; do not keep them here
	bs.done()
	return nil
}

// largeEvent is the data size from which an event's entry is allocated
// alone: a block stays reachable while any of its entries is held, and
// with it the events of all its entries, settled or not, which for large
// events would be megabytes beyond max_in_flight_bytes.
const largeEvent = 2 << 10

// entry returns a new entry for o's event, from the current block or
// alone for a large event; n (the changes left in the batch) sizes a new
// block.
func (t *transformer) entry(o *transform.Output, n int) *entry {
	if len(o.Event.DataEncoded) > largeEvent {
		return &entry{event: o.Event, rule: o.Rule, source: t.l.name}
	}
	if len(t.block) == cap(t.block) {
		// A full block is never grown: sinks hold pointers into it.
		t.block = make([]entry, 0, max(n, 16))
	}
	t.block = append(t.block, entry{event: o.Event, rule: o.Rule, source: t.l.name})
	return &t.block[len(t.block)-1]
}

// route dead-letters the failures among the outputs of rest[0] and adds
// its events to their sinks' deliveries; rest is the batch from that
// change on (its length sizes a new entry block).
func (t *transformer) route(ctx context.Context, rest []ferry.Change, outs []transform.Output) error {
	l, c := t.l, &rest[0]
	if c.Invalid != nil {
		return l.invalid(ctx, c)
	}
	if len(outs) == 0 {
		l.stats.Dropped.Add(1)
	}
	for _, o := range outs {
		if o.Err != nil {
			if err := l.ruleFailed(ctx, c, o); err != nil {
				return err
			}
			continue
		}
		e := t.entry(&o, len(rest))
		// A backfill or replay run beside its source (its own key)
		// re-sends old changes: their age is not delivery latency.
		if l.key == l.name {
			e.committed = c.Time
		}
		to := o.To
		if len(c.To) > 0 {
			to = c.To
		}
		for _, sink := range to {
			t.perSink[sink] = append(t.perSink[sink], e)
		}
	}
	return nil
}
