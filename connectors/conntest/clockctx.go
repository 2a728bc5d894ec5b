package conntest

import (
	"context"
	"errors"
	"sync/atomic"
)

// ErrClockDeadline is why a ClockCtx ended.
var ErrClockDeadline = errors.New("deadline passed by the clock")

// ClockCtx is a context that learns it is over by reading the clock in
// Err, before any timer closes Done, as an HA leader's held write does
// (ha.Fence.Hold: a process frozen past its deadline resumes before its
// timer runs). Err ends it once Expire was called; until Err is called
// after that, Done stays open. A sink must check ctx.Err() before each
// request to be fenced by it.
type ClockCtx struct {
	context.Context
	cancel  context.CancelCauseFunc
	expired atomic.Bool
}

// NewClockCtx returns a live ClockCtx.
func NewClockCtx() *ClockCtx {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &ClockCtx{Context: ctx, cancel: cancel}
}

// Expire moves the clock past the deadline.
func (c *ClockCtx) Expire() { c.expired.Store(true) }

// Err implements context.Context.
func (c *ClockCtx) Err() error {
	if c.expired.Load() {
		c.cancel(ErrClockDeadline)
	}
	return c.Context.Err()
}
