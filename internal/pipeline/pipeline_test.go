package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.uber.org/goleak"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scriptSource emits batches of `per` changes over `keys` keys; batch i has
// checkpoint "i". It stops with ErrEndOfInput after `batches` batches, or
// never when batches is 0.
type scriptSource struct {
	batches, per, keys int
	next               int
	failAt             int // Read returns a fatal error at this batch (1-based); 0 never
	read               atomic.Int64
	opened             ferry.Position
}

func (s *scriptSource) Open(_ context.Context, from ferry.Position) error {
	s.opened = from
	if from != nil {
		n, _ := strconv.Atoi(string(from))
		s.next = n
	}
	return nil
}

func (s *scriptSource) Read(ctx context.Context) (ferry.Batch, error) {
	if ctx.Err() != nil {
		return ferry.Batch{}, ctx.Err()
	}
	if s.batches > 0 && s.next >= s.batches {
		<-ctx.Done() // a streaming source waits for more
		return ferry.Batch{}, ctx.Err()
	}
	s.next++
	if s.failAt == s.next {
		return ferry.Batch{}, errors.New("binlog purged")
	}
	b := ferry.Batch{Checkpoint: ferry.Position(strconv.Itoa(s.next))}
	for i := range s.per {
		n := (s.next-1)*s.per + i
		b.Changes = append(b.Changes, ferry.Change{
			ID: strconv.Itoa(n), Op: ferry.OpCreate, Source: "src", DB: "db", Table: "t",
			Key:   ferry.Row{Columns: []string{"k"}, Values: []any{int64(n % s.keys)}},
			After: ferry.Row{Columns: []string{"k", "n"}, Values: []any{int64(n % s.keys), int64(n)}},
			Time:  time.Unix(0, 0),
		})
	}
	s.read.Add(int64(len(b.Changes)))
	return b, nil
}

func (s *scriptSource) Close(context.Context) error { return nil }

// recordSink records delivered events; fail decides per event and attempt.
type recordSink struct {
	mu       sync.Mutex
	got      []*event.Event
	attempts map[string]int
	fail     func(e *event.Event, attempt int) error
	delay    time.Duration
	onWrite  func()
}

func (s *recordSink) Open(context.Context) error  { return nil }
func (s *recordSink) Close(context.Context) error { return nil }

func (s *recordSink) Write(ctx context.Context, evs []*event.Event) error {
	if s.onWrite != nil {
		s.onWrite()
	}
	if s.delay > 0 {
		if !sleep(ctx, s.delay) {
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	be := ferry.NewBatchError()
	failedKeys := map[string]bool{}
	for i, e := range evs {
		s.attempts[e.ID()]++
		key, _ := e.Extensions()[transform.PartitionKeyExtension].(string)
		var err error
		if failedKeys[key] {
			err = errors.New("earlier event with this key failed")
		} else if s.fail != nil {
			err = s.fail(e, s.attempts[e.ID()])
		}
		if err != nil {
			failedKeys[key] = true
			be.Fail(i, err)
			continue
		}
		s.got = append(s.got, e)
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

func (s *recordSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.got))
	for i, e := range s.got {
		out[i] = e.ID()
	}
	return out
}

type fixture struct {
	store *state.Store
	rt    *Runtime
}

func newFixture(t *testing.T, src ferry.Source, sinks map[string]ferry.Sink, mut func(*Config)) *fixture {
	t.Helper()
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var names []string
	cfg := Config{Store: st, CheckpointInterval: time.Millisecond, ShutdownTimeout: 2 * time.Second,
		Sources: []SourceSpec{{Name: "src", Source: src}}}
	for n, s := range sinks {
		names = append(names, n)
		cfg.Sinks = append(cfg.Sinks, SinkSpec{Name: n, Sink: s, Retry: RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	}
	cfg.Engine, _ = transform.New(transform.Options{TypePrefix: "t", DefaultTo: names})
	if mut != nil {
		mut(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: st, rt: rt}
}

func (f *fixture) checkpoint(t *testing.T) string {
	cp, _, err := f.store.LoadCheckpoint(context.Background(), "src")
	if err != nil {
		t.Fatal(err)
	}
	return string(cp.Position)
}

// runUntil runs the pipeline until cond holds, then stops it gracefully.
func (f *fixture) runUntil(t *testing.T, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.rt.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			cancel()
			return err
		case <-deadline:
			cancel()
			<-done
			t.Fatal("condition not reached in 10s")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	return <-done
}

func TestDeliversInOrderAndCheckpoints(t *testing.T) {
	src := &scriptSource{batches: 50, per: 20, keys: 7}
	sink := &recordSink{}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 1000 }); err != nil {
		t.Fatal(err)
	}
	for i, id := range sink.ids() {
		if id != strconv.Itoa(i) {
			t.Fatalf("event %d has id %s: order broken", i, id)
		}
	}
	if cp := f.checkpoint(t); cp != "50" {
		t.Fatalf("checkpoint = %q, want 50", cp)
	}
}

func TestCheckpointNeverPassesUndeliveredEvent(t *testing.T) {
	src := &scriptSource{batches: 10, per: 5, keys: 5}
	// Event 23 (batch 5) fails transiently forever; everything else succeeds.
	sink := &recordSink{fail: func(e *event.Event, _ int) error {
		if e.ID() == "23" {
			return errors.New("503")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	err := f.runUntil(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return sink.attempts["23"] >= 5
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sink.ids() {
		if n, _ := strconv.Atoi(id); n >= 23 && n%5 == 3 {
			t.Fatalf("event %s overtook the failing event 23 with the same key", id)
		}
	}
	if cp := f.checkpoint(t); cp != "4" {
		t.Fatalf("checkpoint = %q, want 4 (batch 5 holds an undelivered event)", cp)
	}
}

func TestPartialFailureRetriesOnlyFailedAndKeepsKeyOrder(t *testing.T) {
	src := &scriptSource{batches: 20, per: 10, keys: 3}
	sink := &recordSink{fail: func(e *event.Event, attempt int) error {
		if n, _ := strconv.Atoi(e.ID()); n%17 == 0 && attempt < 3 {
			return ferry.RetryAfter(errors.New("throttled"), time.Millisecond)
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 200 }); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	last := map[int]int{}
	for _, id := range sink.ids() {
		seen[id]++
		n, _ := strconv.Atoi(id)
		if prev, ok := last[n%3]; ok && prev > n {
			t.Fatalf("key %d: event %d after %d", n%3, n, prev)
		}
		last[n%3] = n
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("event %s delivered %d times; a partial retry resent delivered events", id, c)
		}
	}
}

func TestPermanentFailureAndExhaustedRetriesAreDeadLettered(t *testing.T) {
	src := &scriptSource{batches: 4, per: 5, keys: 20}
	sink := &recordSink{fail: func(e *event.Event, _ int) error {
		switch e.ID() {
		case "3":
			return ferry.Permanent(errors.New("400 bad request"))
		case "12":
			return errors.New("500")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) { c.Sinks[0].Retry.MaxAttempts = 3 })
	if err := f.runUntil(t, func() bool { return f.rt.Stats().Sink("s").DeadLettered.Load() == 2 && f.checkpoint(t) == "4" }); err != nil {
		t.Fatal(err)
	}
	var letters []state.DeadLetter
	_ = f.store.DeadLetters(context.Background(), func(d state.DeadLetter) error { letters = append(letters, d); return nil })
	if len(letters) != 2 || letters[0].EventID != "3" || letters[0].Attempts != 1 || letters[1].EventID != "12" || letters[1].Attempts != 3 {
		t.Fatalf("dead letters = %+v", letters)
	}
	if len(sink.ids()) != 18 {
		t.Fatalf("delivered %d events, want 18", len(sink.ids()))
	}
}

func TestBackpressureBoundsInFlight(t *testing.T) {
	src := &scriptSource{batches: 0, per: 10, keys: 10}
	var maxAhead atomic.Int64
	sink := &recordSink{delay: 2 * time.Millisecond}
	sink.onWrite = func() {
		ahead := src.read.Load() - int64(len(sink.ids()))
		if ahead > maxAhead.Load() {
			maxAhead.Store(ahead)
		}
	}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) { c.MaxInFlight = 100 })
	if err := f.runUntil(t, func() bool { return len(sink.ids()) >= 2000 }); err != nil {
		t.Fatal(err)
	}
	// MaxInFlight plus one batch the reader may hold while waiting for budget.
	if m := maxAhead.Load(); m > 110 {
		t.Fatalf("source ran %d changes ahead of the sink; MaxInFlight is 100", m)
	}
}

func TestFanOutOneSinkDownOthersKeepGoing(t *testing.T) {
	src := &scriptSource{batches: 30, per: 10, keys: 5}
	var down atomic.Bool
	down.Store(true)
	up := &recordSink{}
	flaky := &recordSink{fail: func(*event.Event, int) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"up": up, "flaky": flaky}, func(c *Config) { c.MaxInFlight = 1000 })
	err := f.runUntil(t, func() bool {
		if len(up.ids()) == 300 && down.Load() {
			if cp := f.checkpoint(t); cp != "" {
				t.Errorf("checkpoint %q advanced while a sink was down", cp)
			}
			down.Store(false)
		}
		return len(flaky.ids()) == 300
	})
	if err != nil {
		t.Fatal(err)
	}
	if cp := f.checkpoint(t); cp != "30" {
		t.Fatalf("checkpoint after recovery = %q, want 30", cp)
	}
}

func TestShutdownIsBoundedWhenSinkIsStuck(t *testing.T) {
	src := &scriptSource{batches: 0, per: 10, keys: 10}
	sink := &recordSink{fail: func(*event.Event, int) error { return errors.New("down") }}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.rt.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a graceful stop", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the shutdown timeout")
	}
	if cp := f.checkpoint(t); cp != "" {
		t.Fatalf("checkpoint = %q although nothing was delivered", cp)
	}
}

func TestSourceFailureStopsWithErrorAndKeepsProgress(t *testing.T) {
	src := &scriptSource{batches: 100, per: 5, keys: 5, failAt: 8}
	sink := &recordSink{}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	err := f.rt.Run(context.Background())
	if err == nil || !errors.Is(err, err) || fmt.Sprint(err) != "source src: binlog purged" {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	if cp := f.checkpoint(t); cp != "7" {
		t.Fatalf("checkpoint = %q, want 7", cp)
	}
}

func TestResumesFromCheckpoint(t *testing.T) {
	st, _ := state.Open(t.TempDir(), state.Options{})
	defer st.Close()
	_ = st.SaveCheckpoint(context.Background(), "src", ferry.Position("5"))
	src := &scriptSource{batches: 6, per: 1, keys: 1}
	sink := &recordSink{}
	eng, _ := transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"s"}})
	rt, _ := New(Config{Store: st, Engine: eng, Sources: []SourceSpec{{Name: "src", Source: src}},
		Sinks: []SinkSpec{{Name: "s", Sink: sink}}})
	f := &fixture{store: st, rt: rt}
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 1 }); err != nil {
		t.Fatal(err)
	}
	if string(src.opened) != "5" || sink.ids()[0] != "5" {
		t.Fatalf("opened at %q, delivered %v", src.opened, sink.ids())
	}
}

// TestRetryAfterOfOneEventIsHonoured: a destination that throttles one event
// of a batch with Retry-After is not retried sooner, although the sink
// reports the failure inside a BatchError.
func TestRetryAfterOfOneEventIsHonoured(t *testing.T) {
	src := &scriptSource{batches: 1, per: 3, keys: 3}
	var firstFail, retried atomic.Int64
	sink := &recordSink{fail: func(e *event.Event, attempt int) error {
		if e.ID() != "1" {
			return nil
		}
		if attempt == 1 {
			firstFail.Store(time.Now().UnixNano())
			return ferry.RetryAfter(errors.New("429"), 300*time.Millisecond)
		}
		retried.Store(time.Now().UnixNano())
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil) // backoff 1-5ms
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 3 }); err != nil {
		t.Fatal(err)
	}
	if gap := time.Duration(retried.Load() - firstFail.Load()); gap < 300*time.Millisecond {
		t.Fatalf("retried after %v; the destination asked for 300ms", gap)
	}
}

// TestDeadLetterSink: dead letters go to the configured sink as events
// with the reason; what that sink refuses is stored, so nothing is lost.
func TestDeadLetterSink(t *testing.T) {
	src := &scriptSource{batches: 1, per: 4, keys: 4}
	main := &recordSink{fail: func(e *event.Event, _ int) error {
		if e.ID() == "1" || e.ID() == "2" {
			return ferry.Permanent(errors.New("422 unprocessable"))
		}
		return nil
	}}
	dlq := &recordSink{fail: func(e *event.Event, _ int) error {
		if e.ID() == "2" {
			return errors.New("dead-letter topic unavailable")
		}
		return nil
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"main": main, "dlq": dlq}, func(c *Config) {
		c.DeadLetterSink = "dlq"
		c.Engine, _ = transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"main"}})
	})
	if err := f.runUntil(t, func() bool { return f.rt.Stats().Sink("main").DeadLettered.Load() == 2 && f.checkpoint(t) == "1" }); err != nil {
		t.Fatal(err)
	}
	got := dlq.got
	if len(got) != 1 || got[0].ID() != "1" || got[0].Extensions()["deadlettersink"] != "main" ||
		!strings.Contains(fmt.Sprint(got[0].Extensions()["deadlettererror"]), "422 unprocessable") {
		t.Fatalf("dead-letter sink got %v", got)
	}
	var stored []state.DeadLetter
	_ = f.store.DeadLetters(context.Background(), func(d state.DeadLetter) error { stored = append(stored, d); return nil })
	if len(stored) != 1 || stored[0].EventID != "2" {
		t.Fatalf("store holds %+v; want the letter the dead-letter sink refused", stored)
	}
}

// startSource is a scriptSource that resolved its start when opened.
type startSource struct {
	scriptSource
	store      *state.Store
	savedFirst string // the checkpoint stored when Read was first called
}

func (s *startSource) StartPosition() ferry.Position {
	if s.opened != nil {
		return nil
	}
	return ferry.Position("start")
}

func (s *startSource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.savedFirst == "" {
		cp, _, _ := s.store.LoadCheckpoint(ctx, "src")
		s.savedFirst = string(cp.Position) + "|"
	}
	return s.scriptSource.Read(ctx)
}

// TestStartPositionSavedBeforeTheFirstRead: a source opened without a
// checkpoint has its resolved start stored before anything is read, so a
// stop before the first delivery resumes there; with a checkpoint nothing
// is overwritten.
func TestStartPositionSavedBeforeTheFirstRead(t *testing.T) {
	src := &startSource{scriptSource: scriptSource{batches: 3, per: 1, keys: 1}}
	sink := &recordSink{}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	src.store = f.store
	if err := f.runUntil(t, func() bool { return len(sink.ids()) == 3 }); err != nil {
		t.Fatal(err)
	}
	if src.savedFirst != "start|" {
		t.Fatalf("checkpoint at the first Read = %q, want the start position", src.savedFirst)
	}
}
