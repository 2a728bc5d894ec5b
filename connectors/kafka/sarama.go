package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
)

// saramaProducer is client: sarama, sarama's AsyncProducer with
// Idempotent, acks=all and Net.MaxOpenRequests=1.
//
// Order, as read in sarama v1.61.1's async_producer.go: sequence numbers
// are assigned when a batch is built for the broker; with one request in
// flight per broker a later batch of a partition is never sent before an
// earlier one was answered. A retriable answer (NotLeader, a timeout, a
// lost connection) keeps the partition muted and retryBatch resends the
// same batch, same sequence numbers, after the backoff, while the
// partition's later messages are held (dropPartition, the retry levels of
// partitionProducer) and go out after it: so a retry never lets a later
// message overtake an earlier one, and a duplicate of a written batch is
// answered DuplicateSequenceNumber, i.e. success. What breaks order is a
// message sarama fails while it goes on with the next ones of its
// partition: one it cannot find a leader or partition for; a batch
// retryBatch fails (its leader lookup fails while the broker is away,
// Retry.Max, or the broker refuses the resent batch: "old epoch"); a
// batch the broker answers with an error sarama does not retry.
// TestOutageKeepsPerKeyOrder caught the first two on kfake. Hence:
//   - the gate (saramagate.go) keeps a record from the broker unless the
//     previous record of its key in the call was encoded and, once sarama
//     re-routed a record of the call, acknowledged;
//   - Retry.Max is high (saramaRetryMax, hours of retries);
//   - when a record fails, produce also fails every later record of its
//     partition in that call, transiently, whatever sarama said about
//     them: the pipeline retries them behind the failed one, so the last
//     copy of each key's events is in order even where a first copy is
//     not (the gap below);
//   - sarama has no per-message deadline: records without an answer at
//     the Write's deadline are failed, transiently, and stay in sarama
//     (their gate with them), still ahead of anything produced later, so
//     their retries come after them; the next call first waits (up to the
//     timeout) until sarama answered for them, and fails its records,
//     unsent, while it has not.
//
// Residual gap, unlike franz-go: a broker answer sarama does not retry
// (authorization revoked, an out-of-order sequence, an unknown producer
// id) fails a batch after sarama, with no retry under way, may have built
// the partition's next batch; that one is then sent, and a later event of
// a key can be first written before the retry of an earlier one.
type saramaProducer struct {
	client  sarama.Client
	ap      sarama.AsyncProducer
	timeout time.Duration
	routed  sync.WaitGroup // the goroutines reading ap's results

	mu      sync.Mutex
	pending int           // messages sarama has not answered for
	idle    chan struct{} // closed while pending is 0
}

// ticket is a message's Metadata: where its outcome goes.
type ticket struct {
	idx     int
	results chan<- saramaResult
	gate    *gate
}

type saramaResult struct {
	idx       int
	partition int32
	err       error
}

func newSaramaProducer(cfg *Config, log *slog.Logger) (*saramaProducer, error) {
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	if cfg.SASL.Mechanism == "GSSAPI" {
		spns, err := obtainTickets(&sc.Net.SASL.GSSAPI, cfg.Brokers)
		if err != nil {
			return nil, err
		}
		log.Info("kafka sink: kerberos tickets obtained", "principal", sc.Net.SASL.GSSAPI.Username+"@"+sc.Net.SASL.GSSAPI.Realm, "services", spns)
	}
	sc.Producer.Interceptors = append(sc.Producer.Interceptors, rerouteWatch{})
	client, err := sarama.NewClient(cfg.Brokers, sc)
	if err != nil {
		return nil, saslRefused(cfg, err)
	}
	ap, err := sarama.NewAsyncProducerFromClient(client) // asks for the idempotent producer id
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("start the idempotent producer: %w", saslRefused(cfg, err))
	}
	p := &saramaProducer{client: client, ap: ap, timeout: cfg.Timeout, idle: make(chan struct{})}
	close(p.idle)
	p.routed.Add(2)
	go p.route(ap.Successes(), nil)
	go p.route(nil, ap.Errors())
	return p, nil
}

// saslRefused names the mechanism a broker refused (sarama's error does
// not).
func saslRefused(cfg *Config, err error) error {
	if errors.Is(err, sarama.ErrUnsupportedSASLMechanism) {
		return fmt.Errorf("the broker refused SASL mechanism %s: %w", cfg.SASL.Mechanism, err)
	}
	return err
}

// route passes each answer to the call that sent the message.
func (p *saramaProducer) route(ok <-chan *sarama.ProducerMessage, failed <-chan *sarama.ProducerError) {
	defer p.routed.Done()
	for {
		var r saramaResult
		var m *sarama.ProducerMessage
		select {
		case msg, open := <-ok:
			if !open {
				return
			}
			m = msg
		case pe, open := <-failed:
			if !open {
				return
			}
			m, r.err = pe.Msg, pe.Err
		}
		t := m.Metadata.(ticket)
		r.idx, r.partition = t.idx, m.Partition
		t.gate.answered(t.idx, r.err)
		t.results <- r // buffered for the whole call: never blocks
		p.done()
	}
}

func (p *saramaProducer) add() {
	p.mu.Lock()
	if p.pending == 0 {
		p.idle = make(chan struct{})
	}
	p.pending++
	p.mu.Unlock()
}

func (p *saramaProducer) done() {
	p.mu.Lock()
	if p.pending--; p.pending == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// waitIdle waits until sarama answered for every message of earlier calls.
func (p *saramaProducer) waitIdle(ctx context.Context) error {
	p.mu.Lock()
	idle, n := p.idle, p.pending
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case <-idle:
		return nil
	case <-t.C:
		return fmt.Errorf("events not sent: %d records of an earlier write are still unacknowledged after %v (sarama retries them, in order)", n, p.timeout)
	case <-ctx.Done():
		return fmt.Errorf("events not sent: wait for the records of an earlier write: %w", ctx.Err())
	}
}

// produce: see saramaProducer.
func (p *saramaProducer) produce(ctx context.Context, recs []*kgo.Record) []error {
	errs := make([]error, len(recs))
	if err := p.waitIdle(ctx); err != nil {
		return fillErr(errs, err)
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	results := make(chan saramaResult, len(recs))
	g := newGate(recs)
	answered := make([]bool, len(recs))
	partition := make([]int32, len(recs)) // -1: no answer from sarama
	sent := 0
	for i, r := range recs {
		partition[i] = -1
		if r == nil {
			answered[i] = true
			continue
		}
		if err := rctx.Err(); err == nil {
			p.add()
			select {
			case p.ap.Input() <- saramaMessage(r, ticket{idx: i, results: results, gate: g}):
				sent++
				continue
			case <-rctx.Done():
				p.done()
			}
		}
		// Later records are not sent either (the gate would hold
		// back those of this key anyway).
		answered[i], errs[i] = true, fmt.Errorf("event not sent: %w", rctx.Err())
	}
wait:
	for ; sent > 0; sent-- {
		select {
		case r := <-results:
			answered[r.idx], partition[r.idx] = true, r.partition
			errs[r.idx] = classifySarama(r.err)
		case <-rctx.Done():
			for i := range answered {
				if !answered[i] {
					errs[i] = fmt.Errorf("%w (%v); sarama goes on retrying it in order", errNoAck, rctx.Err())
				}
			}
			break wait
		}
	}
	failBehind(recs, errs, partition)
	return errs
}

// failBehind fails every record that follows a failed record of its
// partition (see saramaProducer). Only sarama's answers count (partition
// -1: none); records it refused before choosing a partition
// (ConfigurationError: too large) hold nothing.
func failBehind(recs []*kgo.Record, errs []error, partition []int32) {
	type tp struct {
		topic     string
		partition int32
	}
	first := map[tp]int{}
	for i, err := range errs {
		var ce sarama.ConfigurationError
		if err == nil || partition[i] < 0 || errors.As(err, &ce) {
			continue
		}
		if k := (tp{recs[i].Topic, partition[i]}); !hasKey(first, k) {
			first[k] = i
		}
	}
	for i, err := range errs {
		if err != nil || partition[i] < 0 {
			continue
		}
		if f, ok := first[tp{recs[i].Topic, partition[i]}]; ok && f < i {
			errs[i] = fmt.Errorf("written after event %d of partition %s/%d failed: retried behind it", f, recs[i].Topic, partition[i])
		}
	}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool { _, ok := m[k]; return ok }

// saramaMessage is r as sarama's message.
func saramaMessage(r *kgo.Record, t ticket) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{Topic: r.Topic, Timestamp: r.Timestamp, Value: gatedValue{b: r.Value, gate: t.gate, idx: t.idx}, Metadata: t}
	if r.Key != nil {
		m.Key = sarama.ByteEncoder(r.Key)
	}
	if len(r.Headers) > 0 {
		m.Headers = make([]sarama.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value}
		}
	}
	return m
}

// saramaPermanent are the broker answers retrying cannot fix: the event
// is too large or malformed for the topic. Everything else (connections,
// authentication, authorization, an exhausted retry) is transient: the
// operator fixes it while the events wait.
var saramaPermanent = []error{sarama.ErrMessageSizeTooLarge, sarama.ErrMessageSetSizeTooLarge, sarama.ErrInvalidTimestamp,
	sarama.ErrPolicyViolation, sarama.ErrInvalidRecord}

func classifySarama(err error) error {
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) { // sarama's own size check, before sending
		return ferry.Permanent(err)
	}
	for _, p := range saramaPermanent {
		if errors.Is(err, p) {
			return ferry.Permanent(err)
		}
	}
	return err
}

// close is bounded: sarama's Close waits for every message it holds,
// which an outage can make last for hours, so the client is closed
// after the timeout, which fails them.
func (p *saramaProducer) close() {
	p.ap.AsyncClose()
	routed := make(chan struct{})
	go func() { p.routed.Wait(); close(routed) }()
	select {
	case <-routed:
	case <-time.After(p.timeout):
	}
	_ = p.client.Close()
	select {
	case <-routed:
	case <-time.After(p.timeout):
	}
}
