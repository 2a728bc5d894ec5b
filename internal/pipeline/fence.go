package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// ErrFenced means this process lost the right to deliver (an HA leader
// lost its lease): the runtime stops at once, without draining, and
// settles nothing more, so the new leader re-delivers what was in flight.
var ErrFenced = errors.New("deliveries fenced off")

// Fence guards every sink Write of a runtime that may lose the right to
// deliver while it runs (ha.Fence implements it for an HA leader).
//
// Lifecycle: the fence is set in Config for the Runtime's whole life. The
// sink worker calls Hold right before each Write (including writes to the
// dead-letter sink) and the release func right after it returns; a Write
// whose Hold failed is not started. The context Hold returns is cancelled
// when the right to deliver ends, so a slow Write is cut short; its Err
// reports that end by the clock, before any timer has closed Done, and
// sinks check it before each request (see ferry.Sink). Once Hold
// fails, the runtime cancels everything at once: in-flight events are
// abandoned (not acknowledged, no checkpoint past them), Run returns an
// error wrapping ErrFenced, and the Runtime is not run again.
//
// A sink with fencing of its own, such as Kafka transactions (a broker
// refuses a producer whose epoch was bumped by a successor), is stronger
// and works beneath this one: Hold keeps a deposed leader from starting a
// transaction at all, the broker from committing one already started.
type Fence interface {
	// Hold may block (a new leader waiting out its predecessor's deadline)
	// until it allows a Write or ctx ends.
	Hold(ctx context.Context) (context.Context, context.CancelFunc, error)
}

// fencedWrite is the one place a sink worker calls its Sink.Write (for its
// own events and, as the dead-letter sink, for other workers' dead letters),
// only while the fence allows it. A Write the fence cut short fails with
// ErrFenced whatever the sink answered, unless the sink accepted it.
func (w *sinkWorker) fencedWrite(ctx context.Context, events []*event.Event) error {
	return w.fenced(ctx, func(ctx context.Context) error { return w.sink.Write(ctx, events) })
}

// fencedWriteAt is fencedWrite for a transactional sink's own events.
func (w *sinkWorker) fencedWriteAt(ctx context.Context, events []*event.Event, through []ferry.SinkCheckpoint) error {
	return w.fenced(ctx, func(ctx context.Context) error { return w.txn.sink.WriteAt(ctx, events, through) })
}

func (w *sinkWorker) fenced(ctx context.Context, write func(context.Context) error) error {
	fence := w.rt.cfg.Fence
	if fence == nil {
		return write(ctx)
	}
	wctx, release, err := fence.Hold(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	defer release()
	err = write(wctx)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: write cut short: %w (sink said: %w)", ErrFenced, context.Cause(wctx), err)
	}
	return err
}

// checkFence fails, wrapping ErrFenced, when a Write could not start now;
// what a deposed leader must not do besides writing (store dead letters)
// checks it first.
func (r *Runtime) checkFence(ctx context.Context) error {
	if r.cfg.Fence == nil {
		return nil
	}
	_, release, err := r.cfg.Fence.Hold(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFenced, err)
	}
	release()
	return nil
}
