// Package kafkasource is the `type: kafka` source: a franz-go consumer
// group whose records become events. Records in the CloudEvents Kafka
// binding (binary or structured) pass through unchanged; other records
// become a default event. A partition's offset is committed only once
// every sink acknowledged every earlier record of it (at-least-once, per
// partition order).
package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
)

// Sentinel errors of the source.
var (
	// errNoCommitted: start is committed and a partition has no offset.
	errNoCommitted = errors.New("no committed offset")
	// errUnknownTopic: a named topic does not exist (Open waits for it).
	errUnknownTopic = errors.New("topic does not exist")
)

// Source consumes a Kafka consumer group. Read is called from one
// goroutine; acks arrive in read order from another; franz-go's group
// callbacks and the committer run on their own. See offsets for the state
// they share.
type Source struct {
	name  string
	cfg   *Config
	start start
	log   *slog.Logger

	offs *offsets
	from positions // the checkpoint Open was given
	keys headerKeys

	mu     sync.Mutex // guards client, state, err
	client *kgo.Client
	state  ferry.SourceState
	err    error // fatal: Read returns it
	// unreachable is the last failure to reach the partitions' leaders
	// (the committer asks them every commit_interval); nil once they answer.
	unreachable error

	stop context.CancelFunc
	wg   sync.WaitGroup
}

var (
	_ ferry.Source         = (*Source)(nil)
	_ ferry.StatusReporter = (*Source)(nil)
)

// New builds the source; Open connects.
func New(name string, cfg *Config, log *slog.Logger) (*Source, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, _ := parseStart(cfg.Start)
	return &Source{name: name, cfg: cfg, start: st, log: log, state: ferry.StateConnecting, offs: newOffsets(), keys: headerKeys{}}, nil
}

// Open joins the group. It waits, logging why, until the brokers answer
// and every named topic exists, or ctx ends. from is a checkpoint: it
// starts the partitions the group has no committed offset for (see
// README: the group's offsets win).
func (s *Source) Open(ctx context.Context, from ferry.Position) error {
	if from != nil {
		ps, err := parsePositions(from)
		if err != nil {
			return fmt.Errorf("kafka source %s: %w", s.name, err)
		}
		s.from = ps
		s.offs.seed(ps)
	}
	opts, err := s.cfg.clientOptions(kafkawire.Logger{Slog: s.log}, s.groupOpts())
	if err != nil {
		return fmt.Errorf("kafka source %s: %w", s.name, err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka source %s: create client for %v: %w", s.name, s.cfg.Brokers, err)
	}
	if err := s.waitReady(ctx, cl); err != nil {
		cl.Close()
		return err
	}
	s.mu.Lock()
	s.client, s.state = cl, ferry.StateStreaming
	s.mu.Unlock()
	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Go(func() { s.committer(runCtx, cl) })
	s.log.Info("consuming kafka", "brokers", s.cfg.Brokers, "group", s.cfg.Group, "topics", s.cfg.Topics, "topic_regex", s.cfg.TopicRegex)
	return nil
}

// Read returns the records of one poll, at most max_batch, with their
// checkpoint and an ack that lets their offsets be committed.
func (s *Source) Read(ctx context.Context) (ferry.Batch, error) {
	cl, err := s.live()
	if err != nil {
		return ferry.Batch{}, err
	}
	for {
		fetches := cl.PollRecords(ctx, s.cfg.MaxBatch)
		// A partition assigned without the committed offset start
		// requires fails before any record of it is handed out.
		err := s.failed()
		var b ferry.Batch
		if err == nil {
			b, err = s.batch(ctx, fetches)
		}
		// Until here no rebalance ran: the records polled are registered
		// under the assignment they were read in.
		cl.AllowRebalance()
		if err != nil || len(b.Changes) > 0 {
			return b, err
		}
		if err := ctx.Err(); err != nil {
			return ferry.Batch{}, err
		}
	}
}

func (s *Source) batch(ctx context.Context, fetches kgo.Fetches) (ferry.Batch, error) {
	if fetches.IsClientClosed() {
		return ferry.Batch{}, fmt.Errorf("kafka source %s: %w", s.name, ferry.ErrClosed)
	}
	for _, fe := range fetches.Errors() {
		if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
			continue
		}
		// franz-go keeps retrying; the line says what is wrong meanwhile.
		s.log.Warn("kafka fetch failed; retrying", "topic", fe.Topic, "partition", fe.Partition, "error", fe.Err)
	}
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		s.offs.setEnd(p.Topic, p.Partition, p.HighWatermark)
	})
	rs := fetches.Records()
	if len(rs) == 0 {
		return ferry.Batch{}, nil
	}
	rs, marks, cp, err := s.offs.register(rs)
	if err != nil {
		return ferry.Batch{}, fmt.Errorf("kafka source %s: %w", s.name, err)
	}
	if len(rs) == 0 {
		return ferry.Batch{}, nil
	}
	changes := make([]ferry.Change, len(rs))
	for i, r := range rs {
		changes[i] = s.change(ctx, r)
	}
	ack := func(_ context.Context, err error) error {
		if err == nil {
			s.offs.delivered(marks)
		}
		return nil
	}
	return ferry.Batch{Changes: changes, Checkpoint: cp, Ack: ack}, nil
}

// committer commits delivered offsets every commit_interval and refreshes
// the partitions' ends, so lag stays true while the pipeline is not reading
// (a sink outage).
func (s *Source) committer(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.commit(ctx, cl, nil)
		s.refreshEnds(ctx, cl)
	}
}

func (s *Source) refreshEnds(ctx context.Context, cl *kgo.Client) {
	ps := s.offs.assigned()
	if len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ends := map[string]map[int32]kgo.EpochOffset{}
	err := listOffsets(ctx, cl, ps, -1, ends)
	s.mu.Lock()
	was := s.unreachable
	s.unreachable = err
	if s.state != ferry.StateStopped {
		s.state = ferry.StateStreaming
		if err != nil {
			s.state = ferry.StateReconnecting
		}
	}
	s.mu.Unlock()
	switch {
	case err != nil && was == nil:
		s.log.Warn("kafka brokers unreachable; the client keeps retrying", "brokers", s.cfg.Brokers, "error", err)
		return
	case err != nil:
		return
	case was != nil:
		s.log.Info("kafka brokers reachable again", "brokers", s.cfg.Brokers)
	}
	for t, parts := range ends {
		for p, eo := range parts {
			s.offs.setEnd(t, p, eo.Offset)
		}
	}
}

// Close commits what was delivered and leaves the group.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	cl := s.client
	s.client, s.state = nil, ferry.StateStopped
	s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.wg.Wait()
	}
	if cl == nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	s.commit(cctx, cl, nil)
	cl.Close() // leaves the group: onRevoked commits once more
	return nil
}

// Status implements ferry.StatusReporter.
func (s *Source) Status() ferry.SourceStatus {
	s.mu.Lock()
	st := ferry.SourceStatus{State: s.state, Connected: s.client != nil && s.unreachable == nil}
	s.mu.Unlock()
	st.Partitions = s.offs.status()
	return st
}

func (s *Source) live() (*kgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.client == nil {
		return nil, fmt.Errorf("kafka source %s: %w", s.name, ferry.ErrClosed)
	}
	return s.client, nil
}

func (s *Source) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("kafka source %s: %w", s.name, err)
	}
}

func (s *Source) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
