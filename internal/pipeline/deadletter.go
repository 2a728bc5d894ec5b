package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
)

// Dead letters of a sink go to the configured dead-letter sink, written by
// that sink's own worker (with its retries, fence and stats, between its
// own Writes, so Sink.Write is never called by two goroutines), and what it
// does not accept goes to the state store.

// letterBatch asks the dead-letter sink's worker to write other workers'
// dead letters. The worker answers exactly once on reply.
type letterBatch struct {
	events []*event.Event
	reply  chan letterReply // buffered: the worker never waits on it
}

// letterReply names the letters the dead-letter sink did not accept (by
// index in letterBatch.events) and why.
type letterReply struct {
	refused []int
	err     error
}

// Bounds of the dead-letter sink's retries of one letterBatch: the sending
// worker waits for the answer (its dead letters must be durable before
// their batches are released) and the store takes what is refused.
const (
	letterAttempts = 3
	letterTimeout  = 30 * time.Second
)

// errLettersWhileStalled answers letters that arrive while the dead-letter
// sink is paused after Writes without progress: they are stored at once.
var errLettersWhileStalled = errors.New("dead-letter sink is paused after failed writes")

// deadLetter stores failures durably; until it succeeds their batches cannot
// be released, so it retries storage errors until ctx ends.
func (w *sinkWorker) deadLetter(ctx context.Context, dead []failure) error {
	if len(dead) == 0 {
		return nil
	}
	if err := w.rt.checkFence(ctx); err != nil {
		return err // a deposed leader dead-letters nothing: its successor decides
	}
	// One line per burst: a destination that rejects thousands of events
	// must not flood the log; each letter keeps its own reason.
	w.log.Error("event dead-lettered", "count", len(dead), "first_id", dead[0].event.ID(), "error", dead[0].err)
	w.stats.observeDeadLetter(time.Now(), dead[0].err)
	dead = w.toDeadLetterSink(dead)
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
			EventID: f.event.ID(), Event: body, Error: w.rt.cfg.redact(f.err.Error()), Attempts: f.tries}
		w.log.Debug("dead-lettering event", "id", f.event.ID(), "attempts", f.tries, "error", f.err)
	}
	if err := w.rt.cfg.Store.PutDeadLetters(ctx, letters); err != nil {
		return fmt.Errorf("sink %s: %w", w.name, err)
	}
	w.stats.DeadLettered.Add(uint64(len(dead)))
	return nil
}

// toDeadLetterSink hands dead letters to the dead-letter sink's worker (the
// event, with why and after how many attempts as extensions), waits for its
// answer and returns those it did not accept, for the store. A sink's own
// dead letters never go back to it, and none go to a worker that stopped.
func (w *sinkWorker) toDeadLetterSink(dead []failure) []failure {
	target := w.rt.sinks[w.rt.cfg.DeadLetterSink]
	if target == nil || target == w {
		return dead
	}
	lb := &letterBatch{events: make([]*event.Event, len(dead)), reply: make(chan letterReply, 1)}
	for i, f := range dead {
		e := f.event.Clone()
		e.SetExtension("deadlettersink", w.name)
		e.SetExtension("deadlettererror", f.err.Error())
		e.SetExtension("deadletterattempts", int32(f.tries))
		lb.events[i] = &e
	}
	select {
	case target.letters <- lb:
	case <-target.stopped:
		return dead
	}
	// The target answers even when its context ends (it shares ours).
	r := <-lb.reply
	w.stats.DeadLettered.Add(uint64(len(dead) - len(r.refused)))
	if len(r.refused) == 0 {
		return nil
	}
	rest := make([]failure, len(r.refused))
	for i, idx := range r.refused {
		rest[i] = dead[idx]
	}
	if !errors.Is(r.err, ErrFenced) {
		w.log.Warn("dead-letter sink refused some dead letters; storing them", "dead_letter_sink", target.name, "count", len(rest), "error", r.err)
	}
	return rest
}

// writeLetters writes another worker's dead letters through this sink,
// retrying transient failures a bounded number of times with this sink's
// backoff, and answers with those it did not accept.
func (w *sinkWorker) writeLetters(ctx context.Context, lb *letterBatch) {
	pending := make([]int, len(lb.events))
	for i := range pending {
		pending[i] = i
	}
	var refused []int
	var err error
	deadline := time.Now().Add(letterTimeout)
	for attempt := 1; len(pending) > 0; attempt++ {
		events := make([]*event.Event, len(pending))
		for j, i := range pending {
			events[j] = lb.events[i]
		}
		wctx, cancel := context.WithDeadline(ctx, deadline)
		start := time.Now()
		err = w.fencedWrite(wctx, events)
		cancel()
		w.stats.observeWrite(time.Since(start))
		var permanent []int
		pending, permanent = w.letterOutcome(pending, err)
		refused = append(refused, permanent...)
		if len(pending) == 0 || errors.Is(err, ErrFenced) || attempt == letterAttempts ||
			!sleep(ctx, min(w.retry.Delay(attempt, err), time.Until(deadline))) {
			break
		}
		w.stats.Retries.Add(uint64(len(pending)))
	}
	lb.reply <- letterReply{refused: append(refused, pending...), err: err}
}

// letterOutcome counts one Write of dead letters in this sink's stats and
// splits the letters that failed into those worth retrying and those
// refused for good.
func (w *sinkWorker) letterOutcome(sent []int, err error) (retry, permanent []int) {
	if err == nil {
		w.stats.Delivered.Add(uint64(len(sent)))
		w.stats.observeOutcome(nil, true)
		return nil, nil
	}
	w.stats.Failures.Add(1)
	var be *ferry.BatchError
	isBatch := errors.As(err, &be)
	accepted := 0
	for j, i := range sent {
		ferr := err
		if isBatch {
			ferr = be.Failed(j)
		}
		switch {
		case ferr == nil:
			accepted++
		case ferry.IsPermanent(ferr):
			permanent = append(permanent, i)
		default:
			retry = append(retry, i)
		}
	}
	w.stats.Delivered.Add(uint64(accepted))
	w.stats.observeOutcome(err, accepted > 0)
	return retry, permanent
}

// waitPause sleeps until the pause after Writes without progress ends,
// answering dead letters that arrive meanwhile with errLettersWhileStalled
// (their senders store them), and reports false when ctx ended first.
func (w *sinkWorker) waitPause(ctx context.Context) bool {
	t := time.NewTimer(time.Until(w.pause))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case lb := <-w.letters:
			all := make([]int, len(lb.events))
			for i := range all {
				all[i] = i
			}
			lb.reply <- letterReply{refused: all, err: errLettersWhileStalled}
		case <-ctx.Done():
			return false
		}
	}
}

// serveLetters writes every letter request waiting right now.
func (w *sinkWorker) serveLetters(ctx context.Context) {
	for {
		select {
		case lb := <-w.letters:
			w.writeLetters(ctx, lb)
		default:
			return
		}
	}
}
