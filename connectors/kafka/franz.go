package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
)

// franzProducer is the default client: franz-go's idempotent producer.
type franzProducer struct {
	cl      *kgo.Client
	timeout time.Duration
}

func newFranzProducer(opts []kgo.Opt, timeout time.Duration) (*franzProducer, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &franzProducer{cl: cl, timeout: timeout}, nil
}

// outcomes collects the outcomes of one produce call's records: one
// promise serves them all and wakes the call once, when the last record
// has its outcome (no closure, no channel send per record; issue 18).
type outcomes struct {
	mu       sync.Mutex
	pending  int // records produced without an outcome, +1 until all are produced
	done     chan struct{}
	finished []*kgo.Record
	failed   map[*kgo.Record]error
}

func newOutcomes(n int) *outcomes {
	return &outcomes{pending: 1, done: make(chan struct{}), finished: make([]*kgo.Record, 0, n)}
}

// add counts a record about to be produced.
func (o *outcomes) add() { o.mu.Lock(); o.pending++; o.mu.Unlock() }

// release drops the count's +1 once every record is produced.
func (o *outcomes) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending--; o.pending == 0 {
		close(o.done)
	}
}

func (o *outcomes) promise(r *kgo.Record, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.finished = append(o.finished, r)
	if err != nil {
		if o.failed == nil {
			o.failed = map[*kgo.Record]error{}
		}
		o.failed[r] = err
	}
	if o.pending--; o.pending == 0 {
		close(o.done)
	}
}

// produce: franz-go keeps each partition's records in order and fails them
// gaplessly: when the first record of a partition's buffer fails, every
// record buffered behind it fails too, so a later record is never written
// before an earlier failed one. The records of a call share one context
// whose deadline is the timeout (franz-go's RecordDeliveryTimeout would
// count from the record's timestamp, the event's time here), so a record
// produced after its partition failed on that deadline fails as well,
// before it is sent. Records already sent fail on the deadline too
// (AllowIdempotentProduceCancellation): they may have been written, so the
// retry can duplicate them, and franz-go then bumps the producer epoch, so
// the broker refuses a late copy of that request rather than write it
// after the retry. Records left by an abandoned call have another
// context: produce first waits for them.
func (p *franzProducer) produce(ctx context.Context, recs []*kgo.Record) []error {
	errs := make([]error, len(recs))
	if p.cl.BufferedProduceRecords() > 0 {
		if err := p.cl.Flush(ctx); err != nil {
			return fillErr(errs, fmt.Errorf("wait for the records of an abandoned write: %w", err))
		}
	}
	o := newOutcomes(len(recs))
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel() // after every record has its outcome, or was abandoned
	for i, r := range recs {
		if r == nil {
			continue
		}
		if err := rctx.Err(); err != nil {
			errs[i] = fmt.Errorf("event not sent: %w", err)
			continue
		}
		o.add()
		p.cl.Produce(rctx, r, o.promise)
	}
	o.release()
	var abandon error
	select {
	case <-o.done:
	case <-ctx.Done():
		abandon = ctx.Err()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if abandon != nil && o.pending > 0 {
		// The records left are failed by their cancelled context or,
		// if written meanwhile, are still ahead of anything produced
		// later to their partition: one client keeps each partition's
		// order, so the retry can duplicate them but not overtake
		// them. (A fresh client per retry would race the old one's
		// requests.) The next call waits for them first.
		return o.abandoned(recs, errs, abandon)
	}
	if o.failed != nil {
		for i, r := range recs {
			if r != nil && errs[i] == nil {
				errs[i] = franzOutcome(o.failed[r])
			}
		}
	}
	return errs
}

// abandoned sets the outcome of each record: its own if it has one, else
// errNoAck. o.mu is held.
func (o *outcomes) abandoned(recs []*kgo.Record, errs []error, cause error) []error {
	have := make(map[*kgo.Record]bool, len(o.finished))
	for _, r := range o.finished {
		have[r] = true
	}
	for i, r := range recs {
		switch {
		case r == nil || errs[i] != nil: // no record, or not sent
		case have[r]:
			errs[i] = franzOutcome(o.failed[r])
		default:
			errs[i] = fmt.Errorf("%w: %w", errNoAck, cause)
		}
	}
	return errs
}

// franzOutcome classifies a record's failure. A record failed by its
// context (the write's deadline, or the caller giving up, whose
// cancellation can reach the promise before produce sees it) has no
// acknowledgement: it may have been written, so it is errNoAck, transient.
func franzOutcome(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errNoAck, err)
	}
	return classifyFranz(err)
}

// fillErr sets err for every record.
func fillErr(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// transientAnyway are broker errors franz-go marks not retriable that the
// operator fixes (credentials, ACLs) while the events wait: dead-lettering
// every event during a misconfiguration would lose the stream's order.
var transientAnyway = []error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState,
	kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed}

// classifyFranz uses the client's own flags: a broker error franz-go does
// not retry (InvalidTimestamp, PolicyViolation, RecordListTooLarge,
// MessageTooLarge, ...) is permanent, except transientAnyway; client
// errors (timeouts, connections) are transient.
func classifyFranz(err error) error {
	var ke *kerr.Error
	if err == nil || !errors.As(err, &ke) || ke.Retriable {
		return err
	}
	for _, t := range transientAnyway {
		if errors.Is(err, t) {
			return err
		}
	}
	return ferry.Permanent(err)
}

// close is bounded: franz-go fails what an abandoned call left buffered
// and cancels requests in flight.
func (p *franzProducer) close() { p.cl.Close() }
