package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry"
)

// TxSink is the sink with delivery: exactly_once. Each WriteAt is one Kafka
// transaction holding the events and, in checkpoint_topic, the position of
// each source the write completes (key: the transactional id and the
// source's checkpoint key; value: the position bytes the state store
// keeps). A consumer reading with isolation.level=read_committed sees a
// batch's events exactly when the position past them is committed, so
// resuming the source from that position (StoredPosition, which the
// pipeline prefers to its own store) neither skips nor repeats a change,
// whatever crashed when.
//
// Any failure inside a transaction aborts it and fails the whole write,
// transiently: nothing of it is visible to read_committed consumers, so
// retrying it keeps each key's order. A producer fenced by a newer one
// with the same transactional id (another instance, a new HA leader)
// returns ferry.ErrSinkFenced from then on, and the pipeline stops.
type TxSink struct {
	*Sink
	tx *txProducer // guarded by Sink.mu
}

var _ ferry.TransactionalSink = (*TxSink)(nil)

// errTxnUnsupported: a broker does not serve the transaction requests.
var errTxnUnsupported = errors.New("does not support transactions (InitProducerId, AddPartitionsToTxn, EndTxn: Kafka 0.11 or later, with transactions enabled)")

// errCommit: EndTransaction(TryCommit) failed; the outcome may be unknown.
var errCommit = errors.New("commit")

// resetTx drops tx's client; the next write creates another.
func (s *TxSink) resetTx(tx *txProducer) {
	s.mu.Lock()
	if s.tx == tx {
		s.tx, s.prod = nil, nil
	}
	s.mu.Unlock()
	tx.close()
}

// committed reports whether the checkpoint topic holds cp, i.e. whether
// a transaction whose commit answer was lost did commit. The position
// advances with every transaction that carries one, so an equal position
// is this transaction's.
func (s *TxSink) committed(ctx context.Context, cp ferry.SinkCheckpoint) bool {
	pos, err := s.StoredPosition(ctx, cp.Source)
	return err == nil && bytes.Equal(pos, cp.Position)
}

// txProducer is franz-go's transactional producer plus the checkpoint
// topic's reader. Write's goroutine only, but for close.
type txProducer struct {
	*franzProducer
	topic  string
	id     string
	ready  bool // the checkpoint topic exists and the brokers were checked
	abort  bool // a transaction is still open: abort it before the next
	unsure bool // an EndTxn of the last transact has an unknown outcome
	// canDescribe: every broker serves DescribeTransactions (Kafka 3.0+).
	canDescribe bool
	fenced      error // set once fenced: this producer never writes again
}

// producerTx returns the transactional client, creating it if needed.
func (s *TxSink) producerTx(ctx context.Context) (*txProducer, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("kafka sink %s: %w", s.name, ferry.ErrClosed)
	}
	if s.tx == nil {
		id := s.cfg.transactionalID(s.name)
		fp, err := newFranzProducer(s.opts, s.cfg.Timeout)
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("kafka sink %s: create the transactional client for %v: %w", s.name, s.cfg.Brokers, err)
		}
		s.tx = &txProducer{franzProducer: fp, topic: s.cfg.CheckpointTopic, id: id}
		s.prod = fp // closed by Sink.Close
	}
	tx := s.tx
	s.mu.Unlock()
	if tx.fenced != nil {
		return nil, tx.fenced
	}
	if !tx.ready {
		if err := tx.prepare(ctx); err != nil {
			return nil, fmt.Errorf("kafka sink %s: %w", s.name, err)
		}
		tx.ready = true
	}
	return tx, nil
}

// Write is WriteAt without a position: the dead letters the pipeline
// forwards when this sink is the dead-letter sink.
func (s *TxSink) Write(ctx context.Context, events []*event.Event) error {
	return s.WriteAt(ctx, events, nil)
}

// WriteAt commits events and through in one transaction, or nothing (see
// ferry.TransactionalSink). An event without a record (a topic expression
// that fails) fails permanently, and the others are not attempted: the
// pipeline dead-letters it and retries them, so no committed position
// passes an event before it is dead-lettered.
func (s *TxSink) WriteAt(ctx context.Context, events []*event.Event, through []ferry.SinkCheckpoint) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka sink %s: %w", s.name, err)
	}
	tx, err := s.producerTx(ctx)
	if err != nil {
		return err
	}
	be := ferry.NewBatchError()
	recs := s.records(ctx, events, be)
	if be.Len() > 0 {
		return notAttemptedBut(be, events)
	}
	for _, cp := range through {
		recs = append(recs, &kgo.Record{Topic: tx.topic, Key: tx.key(cp.Source), Value: cp.Position})
	}
	errs, err := tx.transact(ctx, recs)
	if err == nil {
		return nil
	}
	return s.failed(ctx, tx, events, through, errs, err)
}

// failed handles a transaction that did not commit (err) after producing
// events and through; errs has each record's outcome.
func (s *TxSink) failed(ctx context.Context, tx *txProducer, events []*event.Event, through []ferry.SinkCheckpoint, errs []error, err error) error {
	if !errors.Is(err, ferry.ErrSinkFenced) {
		// franz-go may leave the producer ID in a fatal state after a
		// failed transaction, so a new client takes over; its
		// InitProducerId aborts whatever the broker still holds open of
		// this one. But that InitProducerId would win over any other
		// instance too: only once the coordinator confirms that this
		// producer still holds the id.
		if oerr := tx.stillOwner(ctx, err); oerr != nil && !errors.Is(oerr, ferry.ErrSinkFenced) {
			return fmt.Errorf("kafka sink %s: transaction of %d event(s) aborted: %w; %w", s.name, len(events), err, oerr)
		} else if oerr != nil {
			err = oerr
		}
	}
	if errors.Is(err, ferry.ErrSinkFenced) {
		s.log.Error("kafka sink fenced: another producer initialized the same transactional id; this sink stops",
			"sink", s.name, "transactional_id", tx.id, "error", err)
		return fmt.Errorf("kafka sink %s: %w", s.name, err)
	}
	s.resetTx(tx)
	if errors.Is(err, errCommit) && len(through) > 0 && s.committed(ctx, through[0]) {
		// The commit's answer was lost but the position is there: the
		// transaction committed, with every event of the write.
		return nil
	}
	// A record Kafka refuses for good (too large) is dead-lettered; the
	// others go again in the next transaction.
	be := ferry.NewBatchError()
	for i, e := range errs[:min(len(errs), len(events))] {
		if ferry.IsPermanent(e) {
			be.Fail(i, fmt.Errorf("kafka sink %s: produce event %s: %w", s.name, events[i].ID(), e))
		}
	}
	if be.Len() > 0 {
		return notAttemptedBut(be, events)
	}
	return fmt.Errorf("kafka sink %s: transaction of %d event(s) aborted: %w", s.name, len(events), err)
}

// notAttemptedBut completes be so that it names every event: the write
// was all or nothing.
func notAttemptedBut(be *ferry.BatchError, events []*event.Event) error {
	first := be.Indexes()[0]
	for i := range events {
		if be.Failed(i) == nil {
			be.Fail(i, ferry.NotAttempted(events[first].ID()))
		}
	}
	return be
}

// StoredPosition reads the position committed for source from the
// checkpoint topic, read_committed (nil if none).
func (s *TxSink) StoredPosition(ctx context.Context, source string) (ferry.Position, error) {
	tx, err := s.producerTx(ctx)
	if err != nil {
		return nil, err
	}
	pos, err := tx.stored(ctx, source, s.readOpts)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: read %s: %w", s.name, tx.topic, err)
	}
	return pos, nil
}

// key is the checkpoint record's key: the transactional id (one per
// deployment and sink) and the source's checkpoint key.
func (p *txProducer) key(source string) []byte { return []byte(p.id + "\x00" + source) }

// transact runs recs as one transaction. errs has each record's outcome
// when producing failed; err is nil only when the transaction committed.
func (p *txProducer) transact(ctx context.Context, recs []*kgo.Record) (errs []error, err error) {
	p.unsure = false
	if p.abort {
		if err := p.end(ctx, kgo.TryAbort); err != nil {
			return nil, fmt.Errorf("abort the previous transaction: %w", err)
		}
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return nil, p.fence(fmt.Errorf("begin transaction: %w", err))
	}
	p.abort = true
	errs = p.produce(ctx, recs)
	for _, e := range errs {
		if e != nil {
			err = e
			break
		}
	}
	if err == nil {
		err = p.end(ctx, kgo.TryCommit)
		if err == nil {
			return nil, nil
		}
		err = fmt.Errorf("%w: %w", errCommit, err)
	}
	if aerr := p.end(ctx, kgo.TryAbort); aerr != nil {
		err = fmt.Errorf("%w; abort: %w", err, aerr)
	}
	return errs, p.fence(err)
}

// end ends the open transaction, with a context that the Write's
// cancellation does not cut (franz-go: a cancelled EndTransaction leaves
// the outcome unknown), bounded by the timeout.
func (p *txProducer) end(ctx context.Context, how kgo.TransactionEndTry) error {
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.timeout)
	defer cancel()
	if how == kgo.TryAbort {
		if err := p.cl.AbortBufferedRecords(ectx); err != nil {
			return fmt.Errorf("abort buffered records: %w", err)
		}
	}
	if err := p.cl.EndTransaction(ectx, how); err != nil {
		// Only a broker's refusal says the EndTxn did nothing; after a
		// timeout or a lost connection it may have ended the transaction
		// and moved the epoch on (KIP-890).
		p.unsure = p.unsure || !brokerRefused(err)
		return err
	}
	p.abort = false
	return nil
}

// fence marks the producer fenced when err says a newer producer took
// its transactional id over: it must not try again (the retry would
// initialize the id anew and fence the other instance in turn).
func (p *txProducer) fence(err error) error {
	if err == nil || !(errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)) {
		return err
	}
	p.fenced = fmt.Errorf("transactional id %q: %w: %w", p.id, ferry.ErrSinkFenced, err)
	return p.fenced
}

// prepare checks that every broker serves transactions (naming the one
// that does not), creates the checkpoint topic, compacted, if missing, and
// takes the transactional id over.
func (p *txProducer) prepare(ctx context.Context) error {
	if err := p.checkBrokers(ctx); err != nil {
		return err
	}
	if err := p.createTopic(ctx); err != nil {
		return err
	}
	// InitProducerId now, before the position is read: it fences the
	// previous producer with this id (a killed Ferry, a deposed HA
	// leader) and aborts its open transaction, so the position read next
	// is final; lazily, on the first transaction, the old producer could
	// still commit a batch after the position was read, and it would be
	// delivered twice.
	if _, _, err := p.cl.ProducerID(ctx); err != nil {
		return p.fence(fmt.Errorf("initialize transactional id %q: %w", p.id, err))
	}
	return nil
}

func (p *txProducer) checkBrokers(ctx context.Context) error {
	p.canDescribe = true
	meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("reach the brokers: %w", err)
	}
	for _, m := range meta.Brokers {
		req := kmsg.NewPtrApiVersionsRequest()
		// v3+ refuses a request without them (INVALID_REQUEST).
		req.ClientSoftwareName, req.ClientSoftwareVersion = "ferry", "1"
		resp, err := req.RequestWith(ctx, p.cl.Broker(int(m.NodeID)))
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("ask broker %d (%s:%d) for its API versions: %w", m.NodeID, m.Host, m.Port, err)
		}
		have := map[int16]bool{}
		for _, k := range resp.ApiKeys {
			have[k.ApiKey] = true
		}
		for _, k := range []int16{kmsg.InitProducerID.Int16(), kmsg.AddPartitionsToTxn.Int16(), kmsg.EndTxn.Int16()} {
			if !have[k] {
				return fmt.Errorf("broker %d (%s:%d) %w", m.NodeID, m.Host, m.Port, errTxnUnsupported)
			}
		}
		p.canDescribe = p.canDescribe && have[kmsg.DescribeTransactions.Int16()]
	}
	return nil
}

func (p *txProducer) createTopic(ctx context.Context) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(p.timeout.Milliseconds())
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = p.topic, 1, -1
	for k, v := range map[string]string{"cleanup.policy": "compact"} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return fmt.Errorf("create checkpoint topic %s: %w", p.topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create checkpoint topic %s (compacted): %w", p.topic, err)
		}
	}
	return nil
}

// stored reads the checkpoint topic to its last stable offset with a
// read_committed consumer and returns the last value of source's key.
// Control records are kept so that the end is recognized even when the
// last stable offset is a commit marker.
func (p *txProducer) stored(ctx context.Context, source string, base []kgo.Opt) (ferry.Position, error) {
	end, err := p.lastStable(ctx)
	if err != nil || end <= 0 {
		return nil, err
	}
	opts := append(append([]kgo.Opt(nil), base...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	key := p.key(source)
	var pos ferry.Position
	for idle := 0; ; {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}

		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			if !r.Attrs.IsControl() && bytes.Equal(r.Key, key) {
				pos = append(ferry.Position(nil), r.Value...)
			}
		})
		if last >= end-1 {
			return pos, nil
		}
		if last >= 0 {
			idle = 0
			continue
		}
		// Compaction may have removed the offset before the end (a
		// broker keeps the active segment whole, kfake need not):
		// polls that bring nothing mean the end was passed.
		if idle++; idle == 3 {
			return pos, nil
		}
	}
}

// lastStable is the checkpoint topic's last stable offset (read_committed
// ListOffsets): every record before it is committed or aborted.
func (p *txProducer) lastStable(ctx context.Context) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID, req.IsolationLevel = -1, 1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = p.topic
	pt := kmsg.NewListOffsetsRequestTopicPartition()
	pt.Partition, pt.Timestamp, pt.CurrentLeaderEpoch = 0, -1, -1
	t.Partitions = append(t.Partitions, pt)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, p.cl)
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets: %w", err)
			}
			return rp.Offset, nil
		}
	}
	return 0, fmt.Errorf("list offsets: no answer for %s partition 0", p.topic)
}
