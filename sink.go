package ferry

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Sink delivers CloudEvents to a destination.
//
// Lifecycle: Open is called once before the first Write; it validates what it
// can without blocking on the destination (an unreachable destination is a
// Write failure, retried by the pipeline, not an Open failure). Write is called
// from one goroutine at a time; it returns only when each event is either
// acknowledged by the destination or failed. Write returns:
//
//   - nil: every event was acknowledged;
//   - a *BatchError: the events it names failed, all others were acknowledged;
//   - any other error: no event of the batch is known to be acknowledged.
//
// Order: the events of one ordering key (OrderingKey) come in source order,
// and the sink must deliver them in that order. Once an event fails, the sink
// must not send a later event of the same key in that Write: it reports it
// failed, preferably with NotAttempted, so that the retry does not count
// against the event. Events of other keys are not affected and should go on.
// The pipeline does everything else: it holds back later events of a key
// behind a transient failure (per key, so other keys keep flowing), backs off
// per key, retries, and dead-letters.
//
// Each failed event carries its own classification: transient (retried with
// backoff) unless marked with Permanent, in which case the event is
// dead-lettered and its key goes on. A RetryAfter error asks for a minimum
// delay before the key's next attempt. The pipeline never modifies the events
// it passes and the sink must not keep them after Write returns. Close is
// called once, after the last Write returned.
//
// Context: a Write that sends several requests checks ctx.Err() right before
// each one and sends no more once it is non-nil. An HA leader's Write context
// reports its end by the clock in Err before its timer closes Done (a leader
// frozen past its deadline resumes before the timer runs), so that check is
// what keeps a deposed leader from delivering.
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

// PartitionKeyExtension is the CloudEvents extension that names an event's
// ordering key (the Kafka binding's partitionkey).
const PartitionKeyExtension = "partitionkey"

// OrderingKey is the one key order is kept by, for every sink: the
// partitionkey extension (of any type, in its canonical text form), else the
// subject, else the id. Events with the same ordering key reach a sink in
// source order, and a failing event holds back only later events of its key.
func OrderingKey(e *event.Event) string {
	var ext map[string]any
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		ext = ec.Extensions // no copy: read-only
	} else {
		ext = e.Extensions()
	}
	switch v := ext[PartitionKeyExtension].(type) {
	case nil:
	case string:
		if v != "" {
			return v
		}
	default:
		if s, err := types.Format(v); err == nil && s != "" {
			return s
		}
	}
	if sub := e.Subject(); sub != "" {
		return sub
	}
	return e.ID()
}

// SinkCheckpoint is the position one source reaches with a transactional
// write: every event of that source up to Position was routed to the sink
// in this write or an earlier committed one.
type SinkCheckpoint struct {
	// Source is the source's checkpoint key (its name, or the key of a
	// backfill or replay run beside it).
	Source   string
	Position Position
}

// TransactionalSink is a sink that stores the source position with the
// events, atomically, so that the destination itself is the checkpoint
// (the Kafka sink with delivery: exactly_once). The pipeline uses it
// instead of Write for the events it routes; dead letters it forwards to
// a dead-letter sink still go through Write.
//
// Lifecycle: Open, then StoredPosition once per source before that source
// opens; the pipeline resumes the source from a non-nil answer, which
// takes precedence over its own checkpoint store (the destination holds
// what was really committed: a crash after the commit and before the
// store's save must not deliver that batch again). An error from
// StoredPosition stops the start. Then WriteAt, from one goroutine at a
// time, never concurrently with Write.
//
// WriteAt is all or nothing: nil means every event and every checkpoint
// of through was committed together; any error means none was. A
// *BatchError must then name every event (the cause with its own
// classification, the others NotAttempted), since the events it does not
// name would count as delivered. An error wrapping ErrSinkFenced means
// another instance took over the sink's identity: the pipeline stops.
// through lists only the sources whose position advanced; it may be empty.
type TransactionalSink interface {
	Sink
	StoredPosition(ctx context.Context, source string) (Position, error)
	WriteAt(ctx context.Context, events []*event.Event, through []SinkCheckpoint) error
}
