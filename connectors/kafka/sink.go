package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// maxBuffered is the most records the client holds. A Write of more events
// fails the rest (transiently) rather than block in Produce: see Write.
const maxBuffered = 1 << 18

// Sink produces to Kafka. Write is called by one goroutine at a time (the
// pipeline's contract); the client is created on the first Write, so an
// unreachable cluster is a retried Write failure, not a failed start.
type Sink struct {
	name  string
	cfg   *Config
	opts  []kgo.Opt
	topic cel.Program
	log   *slog.Logger

	mu     sync.Mutex // guards client and closed against Close
	client *kgo.Client
	closed bool

	extHeaders map[string]string // Write's goroutine only
}

var _ ferry.Sink = (*Sink)(nil)

// result is one record's outcome, sent by its promise.
type result struct {
	idx int
	err error
}

// New builds the sink; it does not contact the cluster.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := cfg.clientOptions(kafkawire.Logger{Slog: log})
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: %w", name, err)
	}
	s := &Sink{name: name, cfg: cfg, opts: opts, log: log, extHeaders: map[string]string{}}
	if cfg.TopicExpression != "" {
		if s.topic, err = topicProgram(cfg.TopicExpression); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Open does nothing; see Sink.
func (s *Sink) Open(context.Context) error { return nil }

// clientFor returns the client, creating it if needed (franz-go connects
// lazily, when the first record needs the cluster's metadata).
func (s *Sink) clientFor() (*kgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("kafka sink %s: %w", s.name, ferry.ErrClosed)
	}
	if s.client == nil {
		cl, err := kgo.NewClient(s.opts...)
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: create client for %v: %w", s.name, s.cfg.Brokers, err)
		}
		s.client = cl
	}
	return s.client, nil
}

// Write produces every event and waits for each one's acknowledgement by
// all in-sync replicas.
//
// Order: franz-go keeps each partition's records in order and fails them
// gaplessly: when the first record of a partition's buffer fails, every
// record buffered behind it fails too, so a later record is never written
// before an earlier failed one. The records of a Write share one context
// whose deadline is the timeout (franz-go's RecordDeliveryTimeout would
// count from the record's timestamp, the event's time here), so a record
// produced after its partition failed on that deadline fails as well,
// before it is sent. Records already sent fail on the deadline too
// (AllowIdempotentProduceCancellation): they may have been written, so the
// retry can duplicate them, and franz-go then bumps the producer epoch, so
// the broker refuses a late copy of that request rather than write it
// after the retry. Records left by an abandoned Write have another
// context: Write first waits for them. Events of one ordering key share a
// record key, hence a partition, so a failed record fails the later ones of
// its key too (the ferry.Sink contract); with key: none order is not kept.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka sink %s: %w", s.name, err) // nothing sent
	}
	cl, err := s.clientFor()
	if err != nil {
		return err
	}
	if cl.BufferedProduceRecords() > 0 {
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("kafka sink %s: wait for the records of an abandoned write: %w", s.name, err)
		}
	}
	be := ferry.NewBatchError()
	results := make(chan result, len(events)) // promises must never block
	done := make([]bool, len(events))
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel() // after every record has its result, or was abandoned
	sent := s.produce(rctx, cl, events, be, done, results)
	for ; sent > 0; sent-- {
		select {
		case r := <-results:
			done[r.idx] = true
			if r.err != nil {
				be.Fail(r.idx, s.classify(events[r.idx], r.err))
			}
		case <-ctx.Done():
			// The records left are failed by their cancelled context
			// or, if written meanwhile, are still ahead of anything
			// produced later to their partition: one client keeps
			// each partition's order, so the retry can duplicate them
			// but not overtake them. (A fresh client per retry would
			// race the old one's requests.) The next Write waits
			// for them first.
			for i := range done {
				if !done[i] {
					be.Fail(i, fmt.Errorf("kafka sink %s: %w", s.name, ctx.Err()))
				}
			}
			return be
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// produce hands the events to the client and returns how many promises
// will report. Events it does not send are failed in be and marked done.
func (s *Sink) produce(ctx context.Context, cl *kgo.Client, events []*event.Event, be *ferry.BatchError, done []bool, results chan<- result) int {
	trace := tracectx.FromContext(ctx)
	sent := 0
	for i, e := range events {
		var stop error
		switch {
		case ctx.Err() != nil:
			stop = ctx.Err()
		case i == maxBuffered:
			stop = fmt.Errorf("more than %d events in one write", maxBuffered)
		}
		if stop != nil {
			for j := i; j < len(events); j++ {
				done[j] = true
				be.Fail(j, fmt.Errorf("kafka sink %s: event not sent: %w", s.name, stop))
			}
			break
		}
		r, err := s.record(e)
		if err != nil {
			done[i] = true
			be.Fail(i, ferry.Permanent(fmt.Errorf("kafka sink %s: event %s: %w", s.name, e.ID(), err)))
			continue
		}
		r.Headers = appendTrace(r.Headers, trace, i, e)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) { results <- result{idx: i, err: err} })
		sent++
	}
	return sent
}

// transientAnyway are broker errors franz-go marks not retriable that the
// operator fixes (credentials, ACLs) while the events wait: dead-lettering
// every event during a misconfiguration would lose the stream's order.
var transientAnyway = []error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState,
	kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed}

// classify uses the client's own flags: a broker error franz-go does not
// retry (InvalidTimestamp, PolicyViolation, RecordListTooLarge,
// MessageTooLarge, ...) is permanent, except transientAnyway; client
// errors (timeouts, connections) are transient.
func (s *Sink) classify(e *event.Event, err error) error {
	err = fmt.Errorf("kafka sink %s: produce event %s: %w", s.name, e.ID(), err)
	var ke *kerr.Error
	if !errors.As(err, &ke) || ke.Retriable {
		return err
	}
	for _, t := range transientAnyway {
		if errors.Is(err, t) {
			return err
		}
	}
	return ferry.Permanent(err)
}

// Close disconnects. It is bounded: franz-go fails what an abandoned Write
// left buffered (those events were reported failed already) and cancels
// requests in flight.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	cl := s.client
	s.client = nil
	s.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	return nil
}
