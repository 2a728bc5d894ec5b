package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errReleased ends a term that this replica gave up itself (a clean stop):
// not a loss.
var errReleased = errors.New("ha lease released")

// Fence turns a lease's successful checks into a delivery deadline, so a
// leader that can no longer prove it holds the lease stops delivering at
// once instead of when it notices (it may be frozen, partitioned, or its
// lock session killed).
//
// A leader's term starts when Acquire succeeds and ends when the lease is
// lost, when the deadline passes without a successful check, or on Release.
// Each successful check moves the deadline to the check's start plus the
// lease's validity; the check's start, not its end, since the lease was
// only known to be held before the check was sent. A term that begins after
// another replica may have led starts with a wait (the predecessor's longest
// possible validity), so the successor's first delivery comes after the last
// one its predecessor could start.
//
// Hold is safe from any goroutine; the lease calls begin, renewed and end.
type Fence struct {
	validity time.Duration

	mu        sync.Mutex
	term      context.Context // cancelled, with the reason, when the term ends
	endTerm   context.CancelCauseFunc
	until     time.Time // deliveries may start before this
	notBefore time.Time // ... and not before this
	expiry    *time.Timer
}

// newFence returns a fence with no term: Hold refuses until begin.
func newFence(validity time.Duration) *Fence {
	f := &Fence{validity: validity}
	f.term, f.endTerm = context.WithCancelCause(context.Background())
	f.endTerm(ErrNotHeld)
	return f
}

// Validity is how long a successful check lets this replica deliver.
func (f *Fence) Validity() time.Duration { return f.validity }

// begin starts a term whose lease was known held at checked; deliveries
// wait until wait has passed since now.
func (f *Fence) begin(checked time.Time, wait time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endTerm(errReleased) // a term left open is over
	f.term, f.endTerm = context.WithCancelCause(context.Background())
	f.notBefore = time.Now().Add(wait)
	f.until = time.Time{}
	f.extendLocked(checked)
}

// renewed records a successful check that started at checked.
func (f *Fence) renewed(checked time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.term.Err() == nil {
		f.extendLocked(checked)
	}
}

func (f *Fence) extendLocked(checked time.Time) {
	until := checked.Add(f.validity)
	if until.Before(f.until) {
		return
	}
	f.until = until
	if f.expiry != nil {
		f.expiry.Stop()
	}
	end, d := f.endTerm, time.Until(until)
	f.expiry = time.AfterFunc(d, func() {
		end(fmt.Errorf("%w: no successful check for %v", ErrLost, f.validity))
	})
}

// end closes the current term with cause (wrapping ErrLost on a loss).
func (f *Fence) end(cause error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endTerm(cause)
	if f.expiry != nil {
		f.expiry.Stop()
		f.expiry = nil
	}
}

// Term returns a context that ends with the current term; its cause says
// why (ErrLost on a loss, ErrNotHeld before the first term).
func (f *Fence) Term() context.Context {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.term
}

// Starts returns when the current term's first write may start (the end
// of its takeover wait).
func (f *Fence) Starts() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notBefore
}

// Lost reports whether a term ended by losing the lease rather than by
// Release.
func Lost(term context.Context) bool {
	return errors.Is(context.Cause(term), ErrLost)
}

// Hold allows one write: it returns a context derived from ctx that is
// cancelled when the term ends (the lease is lost or its deadline passes),
// and a release func to call when the write returns. It waits while a new
// term's wait lasts, and fails (wrapping ErrLost or ErrNotHeld) when the
// term is over or its deadline has passed, in which case the write must not
// start.
func (f *Fence) Hold(ctx context.Context) (context.Context, context.CancelFunc, error) {
	for {
		f.mu.Lock()
		term, until, notBefore := f.term, f.until, f.notBefore
		f.mu.Unlock()
		now := time.Now()
		switch {
		case term.Err() != nil:
			return nil, nil, context.Cause(term)
		case !now.Before(until):
			// The expiry timer may not have run yet (the process was frozen).
			return nil, nil, fmt.Errorf("%w: deadline passed %v ago", ErrLost, now.Sub(until).Round(time.Millisecond))
		case now.Before(notBefore):
			if !sleep(ctx, notBefore.Sub(now)) {
				return nil, nil, ctx.Err()
			}
			continue
		}
		wctx, cancel := context.WithCancelCause(ctx)
		stop := context.AfterFunc(term, func() { cancel(context.Cause(term)) })
		held := &heldCtx{Context: wctx, fence: f, term: term, cancel: cancel}
		return held, func() { stop(); cancel(nil) }, nil
	}
}

// heldCtx is the context Hold returns. Its Err reads the clock: once the
// deadline has passed it is done, whether or not the expiry timer has run.
// A process frozen past its deadline (SIGSTOP, a VM or GC pause) resumes
// all its goroutines at once, and the timer's callback is only one of
// them: a sink goroutine whose answer arrived during the freeze would
// otherwise send its next request with a context still live. Sinks check
// ctx.Err() right before each request, so that check is what fences them.
// Err cancels the context itself then, so Done and context.Cause agree
// with it.
type heldCtx struct {
	context.Context
	fence  *Fence
	term   context.Context
	cancel context.CancelCauseFunc
}

func (c *heldCtx) Err() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if err := c.fence.passed(c.term); err != nil {
		c.cancel(err)
		return c.Context.Err()
	}
	return nil
}

// passed returns why a write of term may not go on now (the term ended or
// its deadline passed), or nil.
func (f *Fence) passed(term context.Context) error {
	f.mu.Lock()
	current, until := f.term, f.until
	f.mu.Unlock()
	if term.Err() != nil || term != current { // a term is ended before another begins
		return context.Cause(term)
	}
	if since := time.Since(until); since >= 0 {
		return fmt.Errorf("%w: deadline passed %v ago", ErrLost, since.Round(time.Millisecond))
	}
	return nil
}

// Err reports whether a write could start now: nil, or why not.
func (f *Fence) Err() error {
	f.mu.Lock()
	term, until := f.term, f.until
	f.mu.Unlock()
	if term.Err() != nil {
		return context.Cause(term)
	}
	if since := time.Since(until); since >= 0 {
		return fmt.Errorf("%w: deadline passed %v ago", ErrNotHeld, since.Round(time.Millisecond))
	}
	return nil
}
