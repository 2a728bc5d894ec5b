package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-cdc/ferry"
)

// Sink publishes CloudEvents to NATS JetStream.
type Sink struct {
	name    string
	cfg     *Config
	subject cel.Program // nil: the fixed subject
	opts    []natsgo.Option
	log     *slog.Logger

	mu     sync.Mutex // guards conn, js and closed against Close
	conn   *natsgo.Conn
	js     jetstream.JetStream
	closed bool
}

var _ ferry.Sink = (*Sink)(nil)

// New builds the sink; Open connects.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("nats sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{name: name, cfg: cfg, log: log}
	if cfg.SubjectExpression != "" {
		p, err := subjectProgram(cfg.SubjectExpression)
		if err != nil {
			return nil, fmt.Errorf("nats sink %s: subject_expression: %w", name, err)
		}
		s.subject = p
	}
	opts, err := cfg.options(log.With("sink", name))
	if err != nil {
		return nil, fmt.Errorf("nats sink %s: %w", name, err)
	}
	s.opts = opts
	return s, nil
}

// options are the connection's: it reconnects forever, and the first
// connection is made in the background, so an unreachable server is a
// Write failure (retried), not an Open failure.
func (c *Config) options(log *slog.Logger) ([]natsgo.Option, error) {
	opts := []natsgo.Option{
		natsgo.Name(c.Name),
		natsgo.Timeout(c.Timeout),
		natsgo.RetryOnFailedConnect(true),
		natsgo.MaxReconnects(-1),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				log.Warn("nats connection lost", "err", err)
			}
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			log.Warn("nats asynchronous error", "err", err)
		}),
	}
	switch {
	case c.Credentials != "":
		opts = append(opts, natsgo.UserCredentials(c.Credentials))
	case c.Token.IsSet():
		opts = append(opts, natsgo.Token(c.Token.Reveal()))
	case c.User != "":
		opts = append(opts, natsgo.UserInfo(c.User, c.Password.Reveal()))
	}
	if !c.TLS.IsZero() {
		t, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, natsgo.Secure(t))
	}
	return opts, nil
}

// Open starts connecting to the server; it does not wait for it.
func (s *Sink) Open(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("nats sink %s: %w", s.name, ferry.ErrClosed)
	}
	if s.conn != nil {
		return nil
	}
	nc, err := natsgo.Connect(s.cfg.URL, s.opts...)
	if err != nil {
		return fmt.Errorf("nats sink %s: connect to %s: %w", s.name, s.cfg.URL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(s.cfg.Timeout))
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats sink %s: jetstream: %w", s.name, err)
	}
	s.conn, s.js = nc, js
	return nil
}

func (s *Sink) jetStream() (jetstream.JetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("nats sink %s: %w", s.name, ferry.ErrClosed)
	case s.js == nil:
		return nil, fmt.Errorf("nats sink %s: Write before Open", s.name)
	}
	return s.js, nil
}

// Close drains nothing: every Write has returned, so no publish awaits
// its acknowledgement.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("nats sink %s: %w", s.name, ferry.ErrClosed)
	}
	s.closed = true
	if s.conn != nil {
		s.conn.Close()
	}
	return nil
}

// Write publishes the events in rounds: each round publishes the next
// event of every ordering key at once and waits for every acknowledgement,
// so an event is sent only once the previous one of its key is stored.
// When one fails, the later events of its key are reported NotAttempted
// (the ferry.Sink contract), and other keys go on.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if len(events) == 0 {
		return nil
	}
	js, err := s.jetStream()
	if err != nil {
		return err
	}
	be := ferry.NewBatchError()
	failed := map[string]string{} // ordering key -> id of its failed event
	var pending []publish
	settle := func() {
		for _, p := range pending {
			if err := s.await(ctx, p.ack, events[p.idx]); err != nil {
				be.Fail(p.idx, err)
				failed[p.key] = events[p.idx].ID()
			}
		}
		pending = pending[:0]
	}
	queues, order := byKey(events)
	for round := 0; ; round++ {
		more := false
		for _, key := range order {
			q := queues[key]
			if round >= len(q) {
				continue
			}
			more = true
			i := q[round]
			if id, ok := failed[key]; ok {
				be.Fail(i, ferry.NotAttempted(id))
				continue
			}
			if err := ctx.Err(); err != nil {
				be.Fail(i, err)
				failed[key] = events[i].ID()
				continue
			}
			f, err := s.publish(js, events[i])
			if err != nil {
				be.Fail(i, err)
				failed[key] = events[i].ID()
				continue
			}
			if pending = append(pending, publish{idx: i, key: key, ack: f}); len(pending) == maxPending {
				settle() // within the client's bound of unacknowledged publishes
			}
		}
		if !more {
			break
		}
		settle()
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// maxPending bounds the publishes a Write leaves unacknowledged, below
// the client's own bound (4000), at which it would stall.
const maxPending = 1024

// publish is one message in flight.
type publish struct {
	idx int
	key string
	ack jetstream.PubAckFuture
}

// byKey groups event indexes by ordering key, in order of first sight.
func byKey(events []*event.Event) (map[string][]int, []string) {
	queues := map[string][]int{}
	var order []string
	for i, e := range events {
		k := ferry.OrderingKey(e)
		if _, ok := queues[k]; !ok {
			order = append(order, k)
		}
		queues[k] = append(queues[k], i)
	}
	return queues, order
}

// publish sends e without waiting for its acknowledgement.
func (s *Sink) publish(js jetstream.JetStream, e *event.Event) (jetstream.PubAckFuture, error) {
	subject := s.cfg.Subject
	if s.subject != nil {
		var err error
		if subject, err = subjectOf(s.subject, e); err != nil {
			return nil, ferry.Permanent(err)
		}
	}
	m, err := s.message(subject, e)
	if err != nil {
		return nil, err
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(e.ID())}
	if s.cfg.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(s.cfg.Stream))
	}
	f, err := js.PublishMsgAsync(m, opts...)
	if err != nil {
		return nil, classify(fmt.Errorf("publish event %s to %s: %w", e.ID(), subject, err))
	}
	return f, nil
}

// await waits for one acknowledgement.
func (s *Sink) await(ctx context.Context, f jetstream.PubAckFuture, e *event.Event) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return classify(fmt.Errorf("event %s on %s: %w", e.ID(), f.Msg().Subject, err))
	case <-ctx.Done():
		// It may still be stored: the retry carries the same Nats-Msg-Id.
		return fmt.Errorf("event %s: %w", e.ID(), ctx.Err())
	}
}

// classify marks what retrying cannot fix: a message over the server's
// or the stream's size limit, a subject another stream than the configured
// one captures. Everything else (no stream yet, timeouts, a lost
// connection, storage limits) is transient.
func classify(err error) error {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, natsgo.ErrMaxPayload), errors.Is(err, natsgo.ErrBadSubject):
		return ferry.Permanent(err)
	case errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum ||
		api.ErrorCode == errCodeStreamNotMatch || strings.Contains(api.Description, "expected stream does not match")):
		return ferry.Permanent(err)
	}
	return err
}

// errCodeStreamNotMatch is the server's JSStreamNotMatchErr: the subject
// is captured by another stream than the expected one.
const errCodeStreamNotMatch jetstream.ErrorCode = 10060
