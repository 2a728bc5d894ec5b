package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stillOwner asks the transaction coordinator whether this producer still
// holds its transactional id after a transaction failed with failure, and
// marks it fenced (returning ferry.ErrSinkFenced) when another producer
// took the id over. It must be asked before a failed client is replaced:
// a new client's InitProducerId always wins, so an instance that another
// one fenced while it was committing (its commit then fails with
// INVALID_TXN_STATE or a timeout, not PRODUCER_FENCED) would fence that
// one in turn. Other errors are transient: the coordinator could not be
// asked, and the client is kept until it can.
//
// The coordinator's epoch may be one past this producer's when an EndTxn
// whose answer was lost did end the transaction (KIP-890 bumps the epoch
// at each EndTxn): that counts as still the owner, since nobody can tell
// it from a successor's first InitProducerId. If it was a successor, the
// new client fences it once, and its next transaction, refused with a
// broker's answer, finds it fenced here: one instance stays, never both.
func (p *txProducer) stillOwner(ctx context.Context, failure error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	// The id and epoch this client last had; a client whose id is flagged
	// for reload re-initializes it from them (KIP-360), which a broker
	// refuses if another producer took the id over.
	id, epoch, err := p.cl.ProducerID(ctx)
	if err != nil {
		if ferr := p.fence(err); p.fenced != nil {
			return ferr
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read the producer id: %w", err)
		}
	}
	if id < 0 {
		return nil // it never held the id
	}
	unsure := p.unsure || (err != nil && !brokerRefused(err)) || !brokerRefused(failure)
	st, err := p.describe(ctx)
	switch {
	case errors.Is(err, errDescribeUnsupported), errors.Is(err, kerr.TransactionalIDNotFound):
		return nil // a broker before Kafka 3.0 cannot tell; nobody holds the id
	case err != nil:
		return fmt.Errorf("ask the transaction coordinator who holds transactional id %q: %w", p.id, err)
	}
	if st.ProducerID == id && (st.ProducerEpoch == epoch || unsure && st.ProducerEpoch == epoch+1) {
		return nil
	}
	return p.fence(fmt.Errorf("%w: the coordinator gives the id to producer %d epoch %d, this one had epoch %d of producer %d (after: %v)",
		kerr.ProducerFenced, st.ProducerID, st.ProducerEpoch, epoch, id, failure))
}

// errDescribeUnsupported: the coordinator does not serve
// DescribeTransactions (Kafka before 3.0).
var errDescribeUnsupported = errors.New("DescribeTransactions not supported")

// describe is the coordinator's view of this producer's transactional id.
func (p *txProducer) describe(ctx context.Context) (*kmsg.DescribeTransactionsResponseTransactionState, error) {
	if !p.canDescribe {
		return nil, errDescribeUnsupported
	}
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{p.id}
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return nil, err
	}
	for i := range resp.TransactionStates {
		st := &resp.TransactionStates[i]
		if st.TransactionalID != p.id {
			continue
		}
		if err := kerr.ErrorForCode(st.ErrorCode); err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("no answer for transactional id %q", p.id)
}

// brokerRefused reports whether err is a broker's non-retriable answer:
// the request was refused, so it changed nothing.
func brokerRefused(err error) bool {
	var ke *kerr.Error
	return errors.As(err, &ke) && !ke.Retriable
}
