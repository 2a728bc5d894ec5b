package kafka

import (
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// gate keeps the first copies of a key's records of one call in order
// with client: sarama, which, unlike franz-go, can fail a record of a
// partition and then write the later ones (see saramaProducer). Its check
// runs where sarama encodes a message's value into a batch for the broker
// (produceSet.add calls Value.Encode, in the brokerProducer's goroutine);
// a value refused there is failed alone by sarama, unsent, and the gate
// then holds back every later record of the key: the pipeline retries
// them all, behind the refused one.
//
// How sarama v1.61.1 (async_producer.go) fails a message of a partition
// and goes on with the next ones:
//
//  1. before encoding it: topicProducer cannot partition it, or
//     partitionProducer cannot find a leader (updateLeader: "run out of
//     available brokers" while the broker is away) and fails that one
//     message, then tries the next. Its later records then find it not
//     encoded.
//  2. after encoding and sending it, by a retriable answer (a lost
//     connection: handleError; NotLeader, a timeout: handleSuccess): the
//     batch goes to retryBatch, which keeps the partition muted, and can
//     still fail it (the leader lookup fails while the broker is away, or
//     Retry.Max; or the broker refuses the resent batch, as kfake does
//     with "old epoch" once sarama bumped the producer's epoch on failing
//     a batch of another partition); then it unmutes, and the batches
//     built behind it are sent. Encoded is then no proof: the batch may be given up after a
//     later record was encoded, and sarama's Errors channel tells route
//     too late. But no later message of the partition is encoded while
//     the batch waits, unless sarama re-routed a message first: the
//     retriable answer drops the partition's unsent messages into the
//     retry path (dropPartition, or all of a closing brokerProducer's),
//     and the brokerProducer refuses the partition's next messages into it
//     (needsRetry) until partitionProducer, on a re-routed message, sends
//     it the fin and syn that reopen it or moves to a new one (a new
//     retry level: newHighWatermark, updateLeader).
//     Every re-routed message passes the dispatcher again, which applies
//     the Producer.Interceptors: so rerouteWatch sees a second pass of a
//     message of the call before any such encode, synchronously (the
//     message then goes through channels to partitionProducer, and on to
//     the encode). From then on the gate lets a record through only if
//     sarama acknowledged the previous record of its key: a false hold
//     costs a retry, never order. A call's messages are alone in their
//     partitions (produce waits until sarama answered for earlier calls),
//     so a re-routed message is of this call.
//  3. after encoding and sending it, by an answer sarama does not retry
//     (authorization revoked, an out-of-order sequence; handleSuccess'
//     default, or a PacketEncodingError in handleError): it fails the
//     batch and unmutes, and a batch built behind it in the meantime, with
//     no retry, is sent. That is the residual gap (saramaProducer).
type gate struct {
	mu       sync.Mutex
	key      []int // the record's key number, or -1 (key: none)
	prev     []int // the previous record of the same key, or -1
	encoded  []bool
	acked    []bool // sarama reported it written
	passes   []int  // times it went through sarama's dispatcher
	rerouted bool   // sarama re-routed a record of the call (2.)
	failed   []int  // per key: the first record failed or held back, or -1
}

// heldBack fails a record the gate kept from the broker.
type heldBack struct {
	earlier int
	unacked bool
}

func (h *heldBack) Error() string {
	if h.unacked {
		return fmt.Sprintf("not sent: sarama is retrying and has not acknowledged record %d of the same key", h.earlier)
	}
	return fmt.Sprintf("not sent: record %d of the same key failed before it", h.earlier)
}

func newGate(recs []*kgo.Record) *gate {
	n := len(recs)
	g := &gate{key: make([]int, n), prev: make([]int, n), encoded: make([]bool, n), acked: make([]bool, n), passes: make([]int, n)}
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

// pass reports whether record i may go to the broker, and marks it
// encoded. Its previous record was checked the same way when it was
// encoded, so that one is enough.
func (g *gate) pass(i int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.key[i]
	if k < 0 {
		g.encoded[i] = true
		return nil
	}
	if f := g.failed[k]; f >= 0 && f < i {
		return &heldBack{earlier: f}
	}
	if p := g.prev[i]; p >= 0 {
		switch {
		case !g.encoded[p]: // 1.
			g.holdKey(k, p)
			return &heldBack{earlier: p}
		case g.rerouted && !g.acked[p]: // 2.
			g.holdKey(k, i)
			return &heldBack{earlier: p, unacked: true}
		}
	}
	g.encoded[i] = true
	return nil
}

// holdKey holds back the key's records from i on.
func (g *gate) holdKey(k, i int) {
	if f := g.failed[k]; f < 0 || i < f {
		g.failed[k] = i
	}
}

// routed counts a pass of record i through sarama's dispatcher: a second
// one is a retry.
func (g *gate) routed(i int) {
	g.mu.Lock()
	if g.passes[i]++; g.passes[i] > 1 {
		g.rerouted = true
	}
	g.mu.Unlock()
}

// answered records sarama's answer for record i. A failure only spares
// later records a useless trip (the checks in pass do not wait for it).
func (g *gate) answered(i int, err error) {
	g.mu.Lock()
	if err == nil {
		g.acked[i] = true
	} else if k := g.key[i]; k >= 0 {
		g.holdKey(k, i)
	}
	g.mu.Unlock()
}

// rerouteWatch is the producer's interceptor: sarama applies it to each
// message every time the message passes its dispatcher, first and
// re-routed sends alike, before partitioning (see gate, 2.).
type rerouteWatch struct{}

func (rerouteWatch) OnSend(m *sarama.ProducerMessage) {
	if t, ok := m.Metadata.(ticket); ok { // not sarama's own fin messages
		t.gate.routed(t.idx)
	}
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
