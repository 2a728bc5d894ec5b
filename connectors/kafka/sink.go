package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	"github.com/rcrowley/go-metrics"

	"github.com/ferry-cdc/ferry"
)

// sarama records metrics with go-metrics, whose meters start a process-wide
// goroutine that ticks forever. Ferry exports its own metrics, so sarama's
// are switched to go-metrics' no-op implementation.
func init() { metrics.UseNilMetrics = true }

// Sink produces to Kafka. Write is called by one goroutine at a time (the
// pipeline's contract); the producer is created on the first Write, so an
// unreachable cluster is a retried Write failure, not a failed start.
type Sink struct {
	name  string
	cfg   *Config
	sc    *sarama.Config
	topic cel.Program
	log   *slog.Logger

	mu       sync.Mutex // guards producer and closed against Close
	producer sarama.AsyncProducer
	results  chan result
	done     chan struct{} // closed when the result dispatcher exits
	gen      uint64        // Write generation, to drop results of abandoned Writes
	closed   bool

	extHeaders map[string][]byte // Write's goroutine only
}

var _ ferry.Sink = (*Sink)(nil)

// ticket rides in a message's Metadata back to its Write.
type ticket struct {
	gen uint64
	idx int
}

type result struct {
	t   ticket
	err error
}

// New builds the sink; it does not contact the cluster.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{name: name, cfg: cfg, sc: sc, log: log, extHeaders: map[string][]byte{}}
	if cfg.TopicExpression != "" {
		if s.topic, err = topicProgram(cfg.TopicExpression); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Open does nothing; see Sink.
func (s *Sink) Open(context.Context) error { return nil }

// producerFor returns the producer, creating it (and connecting) if needed.
func (s *Sink) producerFor() (sarama.AsyncProducer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kafka sink %s: %w", s.name, ferry.ErrClosed)
	}
	if s.producer != nil {
		return s.producer, nil
	}
	p, err := sarama.NewAsyncProducer(s.cfg.Brokers, s.sc)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: connect to %v: %w", s.name, s.cfg.Brokers, err)
	}
	s.producer, s.results, s.done = p, make(chan result, 2*s.sc.ChannelBufferSize), make(chan struct{})
	go s.dispatch(p, s.results, s.done)
	s.log.Info("connected to kafka", "brokers", s.cfg.Brokers)
	return p, nil
}

// dispatch hands every produce result to the Write waiting for it.
func (s *Sink) dispatch(p sarama.AsyncProducer, out chan<- result, done chan<- struct{}) {
	defer close(done)
	succ, errs := p.Successes(), p.Errors()
	for succ != nil || errs != nil {
		select {
		case m, ok := <-succ:
			if !ok {
				succ = nil
				continue
			}
			out <- result{t: m.Metadata.(ticket)}
		case pe, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			out <- result{t: pe.Msg.Metadata.(ticket), err: pe.Err}
		}
	}
}

// Write produces every event and waits for each one's acknowledgement by
// all in-sync replicas. A failed message fails only its event.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka sink %s: %w", s.name, err) // nothing sent
	}
	p, err := s.producerFor()
	if err != nil {
		return err
	}
	s.gen++
	gen := s.gen
	be := ferry.NewBatchError()
	waiting := make(map[int]bool, len(events))
	for i, e := range events {
		msg, err := s.message(e)
		if err != nil {
			be.Fail(i, ferry.Permanent(err))
			continue
		}
		msg.Metadata = ticket{gen: gen, idx: i}
		// select picks randomly among ready cases: look at ctx first, so a
		// cancelled Write sends nothing more than it reports.
		if ctx.Err() != nil {
			return s.abandon(ctx, be, waiting, events[i:], i)
		}
		select {
		case p.Input() <- msg:
			waiting[i] = true
		case <-ctx.Done():
			return s.abandon(ctx, be, waiting, events[i:], i)
		}
	}
	for len(waiting) > 0 {
		select {
		case r := <-s.results:
			if r.t.gen != gen || !waiting[r.t.idx] {
				continue // a result of an abandoned Write
			}
			delete(waiting, r.t.idx)
			if r.err != nil {
				be.Fail(r.t.idx, s.classify(events[r.t.idx], r.err))
			}
		case <-ctx.Done():
			return s.abandon(ctx, be, waiting, nil, len(events))
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// abandon fails what has no result yet: those messages may still reach
// Kafka, and the pipeline's retry then duplicates them (same id).
func (s *Sink) abandon(ctx context.Context, be *ferry.BatchError, waiting map[int]bool, unsent []*event.Event, from int) error {
	for i := range waiting {
		be.Fail(i, fmt.Errorf("kafka sink %s: %w", s.name, ctx.Err()))
	}
	for i := range unsent {
		be.Fail(from+i, fmt.Errorf("kafka sink %s: %w", s.name, ctx.Err()))
	}
	return be
}

// permanentErrors cannot succeed by retrying the same message.
var permanentErrors = []error{sarama.ErrMessageSizeTooLarge, sarama.ErrMessageTooLarge, sarama.ErrInvalidMessage,
	sarama.ErrInvalidTopic, sarama.ErrTopicAuthorizationFailed, sarama.ErrInvalidRecord}

func (s *Sink) classify(e *event.Event, err error) error {
	// sarama refuses a message over max_message_bytes before sending it,
	// with a ConfigurationError: as permanent as the broker's refusal.
	var ce sarama.ConfigurationError
	isConfig := errors.As(err, &ce)
	err = fmt.Errorf("kafka sink %s: produce event %s: %w", s.name, e.ID(), err)
	if isConfig {
		return ferry.Permanent(err)
	}
	for _, p := range permanentErrors {
		if errors.Is(err, p) {
			return ferry.Permanent(err)
		}
	}
	return err
}

// Close flushes what the producer holds and disconnects.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	p, done := s.producer, s.done
	s.producer = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	p.AsyncClose()
	go func() { // keep the dispatcher from blocking on results nobody reads
		for range s.results {
		}
	}()
	<-done
	close(s.results)
	return nil
}
