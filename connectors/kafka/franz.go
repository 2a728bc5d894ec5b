package kafka

import (
	"context"
	"errors"
	"fmt"
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

// result is one record's outcome, sent by its promise.
type result struct {
	idx int
	err error
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
	results := make(chan result, len(recs)) // promises must never block
	done := make([]bool, len(recs))
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel() // after every record has its result, or was abandoned
	sent := 0
	for i, r := range recs {
		if r == nil {
			done[i] = true
			continue
		}
		if err := rctx.Err(); err != nil {
			done[i], errs[i] = true, fmt.Errorf("event not sent: %w", err)
			continue
		}
		p.cl.Produce(rctx, r, func(_ *kgo.Record, err error) { results <- result{idx: i, err: err} })
		sent++
	}
	for ; sent > 0; sent-- {
		select {
		case r := <-results:
			done[r.idx] = true
			errs[r.idx] = classifyFranz(r.err)
		case <-ctx.Done():
			// The records left are failed by their cancelled context
			// or, if written meanwhile, are still ahead of anything
			// produced later to their partition: one client keeps
			// each partition's order, so the retry can duplicate them
			// but not overtake them. (A fresh client per retry would
			// race the old one's requests.) The next call waits for
			// them first.
			for i := range done {
				if !done[i] {
					errs[i] = fmt.Errorf("%w: %w", errNoAck, ctx.Err())
				}
			}
			return errs
		}
	}
	return errs
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
