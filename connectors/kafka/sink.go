package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// maxBuffered is the most records a client holds. A Write of more events
// fails the rest (transiently) rather than block: see Write.
const maxBuffered = 1 << 18

// producer is one Kafka client behind Sink.Write: franz-go (franz.go) or
// sarama (sarama.go). Both keep each partition's records in order, and
// neither delivers a record of a partition after an earlier record of
// that partition in the same call failed.
type producer interface {
	// produce sends recs in order and returns each one's outcome: nil
	// once all in-sync replicas acknowledged it, else an error marked
	// ferry.Permanent when retrying cannot help. It returns when every
	// record has an outcome, after the timeout, or when ctx is done;
	// the records then still pending are failed, transiently.
	produce(ctx context.Context, recs []*kgo.Record) []error
	// close releases the client; it is bounded.
	close()
}

// errNoAck fails the records a Write stopped waiting for.
var errNoAck = errors.New("no acknowledgement before the write's deadline")

// Sink produces to Kafka. Write is called by one goroutine at a time (the
// pipeline's contract); the client is created on the first Write, so an
// unreachable cluster is a retried Write failure, not a failed start.
type Sink struct {
	name string
	cfg  *Config
	opts []kgo.Opt // franz-go only
	// readOpts are opts without the transactional id: the base of the
	// checkpoint topic's reader (exactly_once only).
	readOpts []kgo.Opt
	topic    cel.Program
	log      *slog.Logger

	mu     sync.Mutex // guards prod and closed against Close
	prod   producer
	closed bool

	extHeaders map[string]string // Write's goroutine only
	shared     sharedValues      // Write's goroutine only
}

var _ ferry.Sink = (*Sink)(nil)

// New builds the sink; it does not contact the cluster.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{name: name, cfg: cfg, log: log, extHeaders: map[string]string{}}
	if cfg.Client == clientFranz {
		txnID := ""
		if cfg.ExactlyOnce() {
			txnID = cfg.transactionalID(name)
		}
		opts, err := cfg.clientOptions(kafkawire.Logger{Slog: log}, txnID)
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: %w", name, err)
		}
		s.opts = opts
		if txnID != "" {
			if s.readOpts, err = cfg.clientOptions(kafkawire.Logger{Slog: log}, ""); err != nil {
				return nil, fmt.Errorf("kafka sink %s: %w", name, err)
			}
		}
	} else if _, err := cfg.saramaConfig(); err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	if cfg.TopicExpression != "" {
		var err error
		if s.topic, err = topicProgram(cfg.TopicExpression); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Open does nothing; see Sink.
func (s *Sink) Open(context.Context) error { return nil }

// producerFor returns the client, creating it if needed. franz-go connects
// lazily; sarama connects here (and, with GSSAPI, first obtains a Kerberos
// ticket), so a failure is this Write's, and the next Write tries again.
func (s *Sink) producerFor() (producer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kafka sink %s: %w", s.name, ferry.ErrClosed)
	}
	if s.prod != nil {
		return s.prod, nil
	}
	var (
		p   producer
		err error
	)
	if s.cfg.Client == clientSarama {
		p, err = newSaramaProducer(s.cfg, s.log)
	} else {
		p, err = newFranzProducer(s.opts, s.cfg.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: create %s client for %v: %w", s.name, s.cfg.Client, s.cfg.Brokers, err)
	}
	s.prod = p
	return p, nil
}

// Write produces every event and waits for each one's acknowledgement by
// all in-sync replicas. Events of one ordering key share a record key,
// hence a partition, and each client fails the records of a partition
// behind a failed one (see franzProducer and saramaProducer), so a failed
// event holds back the later ones of its key (the ferry.Sink contract);
// with key: none order is not kept.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka sink %s: %w", s.name, err) // nothing sent
	}
	p, err := s.producerFor()
	if err != nil {
		return err
	}
	be := ferry.NewBatchError()
	recs := s.records(ctx, events, be)
	for i, err := range p.produce(ctx, recs) {
		var held *heldBack
		if errors.As(err, &held) {
			err = ferry.NotAttempted(events[held.earlier].ID())
		}
		if err != nil && recs[i] != nil {
			be.Fail(i, fmt.Errorf("kafka sink %s: produce event %s: %w", s.name, events[i].ID(), err))
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// records builds each event's record; an event that has none (a topic
// expression that fails, an event that cannot be encoded) fails
// permanently in be and gets nil.
func (s *Sink) records(ctx context.Context, events []*event.Event, be *ferry.BatchError) []*kgo.Record {
	trace := tracectx.FromContext(ctx)
	recs := make([]*kgo.Record, len(events))
	a := newRecordArena(min(len(events), maxBuffered))
	for i, e := range events {
		if i >= maxBuffered {
			be.Fail(i, fmt.Errorf("kafka sink %s: event not sent: more than %d events in one write", s.name, maxBuffered))
			continue
		}
		tp, ts := trace.For(i, e)
		r, err := s.record(a, i, e, traceHeaders(tp, ts))
		if err != nil {
			be.Fail(i, ferry.Permanent(fmt.Errorf("kafka sink %s: event %s: %w", s.name, e.ID(), err)))
			continue
		}
		r.Headers = appendTrace(a, r.Headers, tp, ts)
		recs[i] = r
	}
	return recs
}

// Close disconnects. It is bounded: the clients fail what an abandoned
// Write left (those events were reported failed already).
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	p := s.prod
	s.prod = nil
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
	return nil
}
