package ferry

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Sink delivers CloudEvents to a destination.
//
// Lifecycle: Open is called once before the first Write; it validates what it
// can without blocking on the destination (an unreachable destination is a
// Write failure, retried by the pipeline, not an Open failure). Write is called
// from one goroutine at a time and in source order; it returns only when each
// event is either acknowledged by the destination or failed. Write returns:
//
//   - nil: every event was acknowledged;
//   - a *BatchError: the events it names failed, all others were acknowledged;
//   - any other error: no event of the batch is known to be acknowledged.
//
// Errors are transient (the pipeline retries the failed events with backoff)
// unless marked with Permanent, in which case the events are dead-lettered. A
// RetryAfter error asks for a minimum delay before the next attempt. To keep
// per-key order, a sink that fails an event must also fail every later event
// of the batch with the same partition key. The pipeline never modifies the
// events it passes and the sink must not keep them after Write returns.
// Close is called once, after the last Write returned.
type Sink interface {
	Open(ctx context.Context) error
	Write(ctx context.Context, events []*event.Event) error
	Close(ctx context.Context) error
}

// BatchError reports which events of a Write failed; events it does not name
// were acknowledged.
type BatchError struct {
	failed map[int]error
}

// NewBatchError returns an empty BatchError; add failures with Fail.
func NewBatchError() *BatchError { return &BatchError{failed: map[int]error{}} }

// Fail records that the event at index i failed with err and returns e.
func (e *BatchError) Fail(i int, err error) *BatchError {
	e.failed[i] = err
	return e
}

// Len returns how many events failed.
func (e *BatchError) Len() int { return len(e.failed) }

// Failed returns the error of the event at index i, or nil if it succeeded.
func (e *BatchError) Failed(i int) error { return e.failed[i] }

// Indexes returns the failed indexes in ascending order.
func (e *BatchError) Indexes() []int {
	idx := make([]int, 0, len(e.failed))
	for i := range e.failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

func (e *BatchError) Error() string {
	idx := e.Indexes()
	var b strings.Builder
	fmt.Fprintf(&b, "%d event(s) failed", len(idx))
	for n, i := range idx {
		if n == 3 {
			fmt.Fprintf(&b, "; and %d more", len(idx)-3)
			break
		}
		fmt.Fprintf(&b, "; event %d: %v", i, e.failed[i])
	}
	return b.String()
}
