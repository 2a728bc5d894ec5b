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
// answered DuplicateSequenceNumber, i.e. success. What breaks order:
// (1) a single message sarama fails before it is put in a batch (no
// leader known while the broker is away: updateLeader in
// partitionProducer.dispatch, or partitioning in topicProducer), after
// which it goes on with the next messages of the partition, which the
// returning broker accepts; TestOutageKeepsPerKeyOrder caught this on
// kfake; (2) a batch sarama gives up on, after Retry.Max attempts or on
// an error it does not retry: it fails that batch (and bumps the producer
// epoch so the sequence restarts), unmutes the partition, and sends the
// messages behind it. Hence:
//   - the gate (below) keeps a record from the broker when an earlier
//     record of its key in the call was failed or never encoded;
//   - Retry.Max is high (saramaRetryMax, hours of retries), so within a
//     Write a batch is only given up on an error retrying cannot fix;
//   - when a record fails, produce also fails every later record of its
//     partition in that call, transiently, whatever sarama said about
//     them: the pipeline retries them behind the failed one, so the last
//     copy of each key's events is in order even if sarama wrote a later
//     one first (a duplicate, never a loss);
//   - sarama has no per-message deadline: records without an answer at
//     the Write's deadline are failed, transiently, and stay in sarama,
//     still ahead of anything produced later, so their retries come after
//     them; the next call first waits (up to the timeout) until sarama
//     answered for them, and fails its records, unsent, while it has not.
//
// Residual gap, unlike franz-go: if a partition stays unwritable past
// Retry.Max attempts, messages of an abandoned Write behind the given-up
// batch can be written before the pipeline's retry of it.
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

// gate holds back a record whose key has an earlier record in the same
// call that sarama failed or never sent. sarama fails single messages and
// goes on with the next ones of their partition (no leader known during
// an outage, a partitioning error): without the gate, a later event of a
// key would be written before the pipeline's retry of an earlier one. The
// check runs where sarama encodes a message's value into the batch for
// the broker: a partition's messages get there in order (retries
// included), so an earlier record of the key not encoded by then was
// failed; one failed after it was encoded (a batch sarama gave up on) is
// seen by route.
type gate struct {
	mu      sync.Mutex
	key     []int // the record's key number, or -1 (key: none)
	prev    []int // the previous record of the same key, or -1
	encoded []bool
	failed  []int // per key: the first record that failed, or -1
}

// heldBack fails a record the gate kept from the broker.
type heldBack struct{ earlier int }

func (h *heldBack) Error() string {
	return fmt.Sprintf("not sent: record %d of the same key failed before it", h.earlier)
}

func newGate(recs []*kgo.Record) *gate {
	g := &gate{key: make([]int, len(recs)), prev: make([]int, len(recs)), encoded: make([]bool, len(recs))}
	last, num := map[string]int{}, map[string]int{}
	for i, r := range recs {
		g.key[i], g.prev[i] = -1, -1
		if r == nil || r.Key == nil {
			continue // not sent, or key: none, which keeps no order
		}
		k, ok := num[string(r.Key)]
		if !ok {
			k = len(g.failed)
			num[string(r.Key)] = k
			g.failed = append(g.failed, -1)
		}
		g.key[i] = k
		if p, ok := last[string(r.Key)]; ok {
			g.prev[i] = p
		}
		last[string(r.Key)] = i
	}
	return g
}

// pass reports whether record i may go to the broker, and marks it sent.
// Its previous record was checked the same way when it was encoded, so
// that one and the key's failures are enough.
func (g *gate) pass(i int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if k := g.key[i]; k >= 0 {
		if f := g.failed[k]; f >= 0 && f < i {
			return &heldBack{earlier: f}
		}
		if p := g.prev[i]; p >= 0 && !g.encoded[p] {
			g.failed[k] = p
			return &heldBack{earlier: p}
		}
	}
	g.encoded[i] = true
	return nil
}

// fail records that sarama failed record i.
func (g *gate) fail(i int) {
	g.mu.Lock()
	if k := g.key[i]; k >= 0 && (g.failed[k] < 0 || i < g.failed[k]) {
		g.failed[k] = i
	}
	g.mu.Unlock()
}

// gatedValue is a record's value behind its gate.
type gatedValue struct {
	b    []byte
	gate *gate
	idx  int
}

func (v gatedValue) Encode() ([]byte, error) {
	if err := v.gate.pass(v.idx); err != nil {
		return nil, err
	}
	return v.b, nil
}

func (v gatedValue) Length() int { return len(v.b) }

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
		if r.err != nil {
			t.gate.fail(t.idx)
		}
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
