package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"golang.org/x/time/rate"

	"github.com/ferry-cdc/ferry"
)

// Journal is the durable queue behind the source; the application hands
// the state store in. Accept must be durable (fsync'd) when it returns and
// atomic: all records and the delivery id's answer, or nothing.
type Journal interface {
	// Accept stores records; with a delivery id seen within the window it
	// stores nothing and returns the earlier answer as prior.
	Accept(ctx context.Context, source, deliveryID string, records [][]byte, answer Answer) (seqs []uint64, prior *Answer, err error)
	// Entries returns up to max records with seq > after, in order.
	Entries(ctx context.Context, source string, after uint64, max int) ([]Entry, error)
	// Remove deletes the records with seq <= upTo.
	Remove(ctx context.Context, source string, upTo uint64) (int, error)
	// Info describes the journal: waiting records, the first one's seq, and
	// the last seq ever assigned.
	Info(ctx context.Context, source string) (JournalInfo, error)
	// Expire forgets delivery ids recorded before the given time.
	Expire(ctx context.Context, source string, before time.Time) (int, error)
}

// Answer is what a request with a delivery id was told.
type Answer struct {
	Seqs   []uint64
	Status int
	Body   []byte
	Time   time.Time
}

// Entry is one journaled record.
type Entry struct {
	Seq    uint64
	Record []byte
}

// JournalInfo describes a journal.
type JournalInfo struct {
	Depth        int
	First        uint64 // 0 when empty
	LastAssigned uint64
}

// readBatch bounds the records one Read hands to the pipeline.
const readBatch = 512

// compactEvery is how often delivered records are deleted from the
// journal, in one transaction, instead of one write per acknowledged batch
// competing with the requests' appends. A crash in between re-delivers
// records already delivered: same ids, at least once.
const compactEvery = 500 * time.Millisecond

// Source receives webhooks. See ferry.Source for the lifecycle; requests
// are accepted from Open until Close.
type Source struct {
	name    string
	cfg     *Config
	log     *slog.Logger
	journal Journal
	verify  verifier
	idExpr  cel.Program
	accepts map[string]bool
	limiter *rate.Limiter

	depth     atomic.Int64  // records journaled and not yet delivered
	removed   atomic.Uint64 // records up to this seq are deleted from the journal
	cursor    uint64        // last seq handed to Read (Read's goroutine only)
	appended  chan struct{}
	delivered atomic.Uint64 // every seq <= this has reached all sinks
	dmu       sync.Mutex
	dchanged  chan struct{} // closed and replaced when delivered advances
	stopping  chan struct{}
	stopOnce  sync.Once
	closeHTTP func(context.Context) error
	wg        sync.WaitGroup
	stats     Stats
	ops       ops    // for Status
	tracer    Tracer // nil: requests are not traced
}

var _ ferry.Source = (*Source)(nil)

// Stats count requests by outcome.
type Stats struct {
	Accepted, Duplicates, Unauthorized, Rejected, Throttled, Full, Failed atomic.Uint64
	// InvalidTraceparent counts requests whose traceparent header was
	// ignored as malformed.
	InvalidTraceparent atomic.Uint64
}

// New builds a source writing to journal.
func New(name string, cfg *Config, journal Journal, log *slog.Logger, opts ...Option) (*Source, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("webhook source %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, _ := newVerifier(cfg.Verify) // validated
	s := &Source{name: name, cfg: cfg, log: log, journal: journal, verify: v, accepts: map[string]bool{},
		appended: make(chan struct{}, 1), dchanged: make(chan struct{}), stopping: make(chan struct{})}
	for _, a := range cfg.Accept {
		s.accepts[a] = true
	}
	for _, o := range opts {
		o(s)
	}
	if cfg.IDExpression != "" {
		p, err := idProgram(cfg.IDExpression)
		if err != nil {
			return nil, fmt.Errorf("webhook source %s: %w", name, err)
		}
		s.idExpr = p
	}
	if r := cfg.RateLimit; r.RequestsPerSecond > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(r.RequestsPerSecond), max(r.Burst, 1))
	}
	return s, nil
}

// Stats returns the request counters.
func (s *Source) Stats() *Stats { return &s.stats }

// Open restores the journal state and starts serving requests; requests
// journaled before a restart are delivered first.
func (s *Source) Open(ctx context.Context, _ ferry.Position) error {
	info, err := s.journal.Info(ctx, s.name)
	if err != nil {
		return fmt.Errorf("webhook source %s: %w", s.name, err)
	}
	s.depth.Store(int64(info.Depth))
	if info.Depth > 0 {
		s.delivered.Store(info.First - 1)
		s.log.Info("delivering requests accepted before the restart", "pending", info.Depth)
	} else {
		s.delivered.Store(info.LastAssigned)
	}
	closeHTTP, err := register(s.cfg.Listen, s.cfg.Path, s.cfg.Limits, s.ops.counting(s), s.log)
	if err != nil {
		return err
	}
	s.closeHTTP = closeHTTP
	s.ops.bound.Store(true)
	s.removed.Store(s.delivered.Load())
	s.wg.Go(func() { s.expireLoop() })
	s.wg.Go(func() { s.compactLoop() })
	s.log.Info("webhook ready", "listen", s.cfg.Listen, "path", s.cfg.Path, "verify", s.cfg.Verify.Scheme, "ack", s.cfg.Ack)
	return nil
}

// Addr returns the listener's bound address (for listen ports of 0).
func (s *Source) Addr() string { return boundAddr(s.cfg.Listen) }

// Read returns the next journaled requests, oldest first.
func (s *Source) Read(ctx context.Context) (ferry.Batch, error) {
	poll := time.NewTimer(time.Second)
	defer poll.Stop()
	for {
		entries, err := s.journal.Entries(ctx, s.name, s.cursor, readBatch)
		if err != nil {
			return ferry.Batch{}, err
		}
		if len(entries) > 0 {
			return s.batch(entries)
		}
		select {
		case <-s.appended:
		case <-poll.C:
			poll.Reset(time.Second)
		case <-ctx.Done():
			return ferry.Batch{}, ctx.Err()
		}
	}
}

func (s *Source) batch(entries []Entry) (ferry.Batch, error) {
	changes := make([]ferry.Change, 0, len(entries))
	for _, e := range entries {
		var rec record
		if err := json.Unmarshal(e.Record, &rec); err != nil {
			return ferry.Batch{}, fmt.Errorf("webhook source %s: journal record %d is corrupt: %w", s.name, e.Seq, err)
		}
		c, err := rec.change(s.name)
		if err != nil {
			return ferry.Batch{}, err
		}
		changes = append(changes, c)
	}
	last := entries[len(entries)-1].Seq
	s.cursor = last
	s.ops.handedOut(changes[0].Time)
	n := int64(len(entries))
	ack := func(_ context.Context, err error) error {
		s.ops.acked()
		if err != nil {
			return nil // not delivered: the records stay and are read again after a restart
		}
		s.depth.Add(-n)
		s.markDelivered(last)
		return nil
	}
	return ferry.Batch{Changes: changes, Ack: ack}, nil
}

func (s *Source) markDelivered(seq uint64) {
	s.dmu.Lock()
	s.delivered.Store(seq)
	close(s.dchanged)
	s.dchanged = make(chan struct{})
	s.dmu.Unlock()
}

// waitDelivered blocks until every seq reached all sinks.
func (s *Source) waitDelivered(ctx context.Context, seqs []uint64) error {
	var target uint64
	for _, q := range seqs {
		target = max(target, q)
	}
	for {
		s.dmu.Lock()
		ch := s.dchanged
		s.dmu.Unlock()
		if s.delivered.Load() >= target {
			return nil
		}
		select {
		case <-ch:
		case <-s.stopping:
			return errStopping
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// compactLoop deletes delivered records from the journal in bulk.
func (s *Source) compactLoop() {
	t := time.NewTicker(compactEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			s.compact() // leave as little as possible to re-deliver
			return
		case <-t.C:
			s.compact()
		}
	}
}

func (s *Source) compact() {
	upTo := s.delivered.Load()
	if upTo <= s.removed.Load() {
		return
	}
	if _, err := s.journal.Remove(context.Background(), s.name, upTo); err != nil {
		s.log.Warn("cannot remove delivered records from the journal; retrying", "error", err)
		return
	}
	s.removed.Store(upTo)
}

// expireLoop forgets delivery ids older than the dedupe window.
func (s *Source) expireLoop() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
		}
		if _, err := s.journal.Expire(context.Background(), s.name, time.Now().Add(-s.cfg.DedupeWindow)); err != nil {
			s.log.Warn("cannot expire delivery ids", "error", err)
		}
	}
}

// Close stops accepting requests (waiting for those in flight) and
// releases the listener.
func (s *Source) Close(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	var err error
	if s.closeHTTP != nil {
		err = s.closeHTTP(ctx)
	}
	s.wg.Wait()
	return err
}
