package pipeline

import (
	"time"

	"github.com/ferry-cdc/ferry"
)

// keyQueue holds the events of one ordering key that wait behind a
// transient failure of the key's head, in source order. Backoff belongs to
// the key: it grows with each failed attempt of the head and resets as soon
// as the key makes progress (an event delivered or dead-lettered).
type keyQueue struct {
	waiting  []attempt
	failures int       // failed attempts of the key since its last progress
	since    time.Time // when the key first failed after its last progress
	due      time.Time // when the head may be sent again
	lastErr  error     // the head's last error, for Retry-After and logs
	asked    bool      // the destination named the delay (Retry-After)
}

// holdBack is the one place per sink where per-key order is kept: an event
// whose key has a queue joins the queue instead of being written, so a
// failing key holds back only its own later events and every other key
// keeps flowing. Only the sink worker's goroutine uses it.
type holdBack struct {
	keys map[string]*keyQueue
	held int // events in all queues
}

func newHoldBack() *holdBack { return &holdBack{keys: map[string]*keyQueue{}} }

// empty reports whether no event is held.
func (h *holdBack) empty() bool { return len(h.keys) == 0 }

// admit appends a to its key's queue when the key is held, and reports
// whether it did; otherwise a may be written now.
func (h *holdBack) admit(a attempt) bool {
	q := h.keys[a.key]
	if q == nil {
		return false
	}
	q.waiting = append(q.waiting, a)
	h.held++
	return true
}

// nextDue returns when the earliest held key is due; ok is false when no
// key is held.
func (h *holdBack) nextDue() (due time.Time, ok bool) {
	for _, q := range h.keys {
		if !ok || q.due.Before(due) {
			due, ok = q.due, true
		}
	}
	return due, ok
}

// takeDue moves the queued events of keys due at now onto batch, at most
// max events in all, in key order. Keys due within early of now come too,
// unless the destination asked for their delay (Retry-After). A key whose
// events are taken stays held: events of it that arrive meanwhile queue
// behind them.
func (h *holdBack) takeDue(now time.Time, early time.Duration, batch []attempt, max int) []attempt {
	for _, q := range h.keys {
		if len(batch) >= max {
			break
		}
		if len(q.waiting) == 0 || q.due.After(now) && (q.asked || q.due.After(now.Add(early))) {
			continue
		}
		n := min(len(q.waiting), max-len(batch))
		batch = append(batch, q.waiting[:n]...)
		q.waiting = q.waiting[n:]
		h.held -= n
		q.due = now.Add(time.Hour) // in flight: not due again until settled
	}
	return batch
}

// keyOutcome is what one Write did for one ordering key.
type keyOutcome struct {
	retry    []attempt // to send again, in order: the failed event and those behind it
	progress bool      // an event was acknowledged or dead-lettered
	failed   bool      // an event failed transiently
	err      error     // that failure
}

// settle updates a key after a Write: the events to retry go back to the
// front of its queue, before those that arrived meanwhile. A key with
// nothing left is released; otherwise it is due after delay(failures) when
// it failed (the worker picks delay: shorter when other keys got through in
// the same Write), and at once when it only has events left to send.
func (h *holdBack) settle(key string, o *keyOutcome, now time.Time, delay func(failures int, err error) time.Duration) {
	q := h.keys[key]
	if q == nil {
		if len(o.retry) == 0 {
			return
		}
		q = &keyQueue{}
		h.keys[key] = q
	}
	if len(o.retry) > 0 {
		q.waiting = append(o.retry, q.waiting...)
		h.held += len(o.retry)
	}
	if len(q.waiting) == 0 {
		delete(h.keys, key)
		return
	}
	if o.progress {
		q.failures = 0
	}
	if !o.failed {
		q.due = now
		return
	}
	if q.failures == 0 {
		q.since = now
	}
	q.failures++
	q.lastErr = o.err
	_, q.asked = ferry.RetryDelay(o.err)
	q.due = now.Add(delay(q.failures, o.err))
}

// failing counts the keys whose head keeps failing and when the oldest
// of them started to.
func (h *holdBack) failing() (keys int, since time.Time) {
	for _, q := range h.keys {
		if q.failures == 0 {
			continue
		}
		keys++
		if since.IsZero() || q.since.Before(since) {
			since = q.since
		}
	}
	return keys, since
}

// drain removes and returns every held event (the worker is stopping).
func (h *holdBack) drain() []attempt {
	var all []attempt
	for k, q := range h.keys {
		all = append(all, q.waiting...)
		delete(h.keys, k)
	}
	h.held = 0
	return all
}
