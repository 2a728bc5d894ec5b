package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// txnSink is an all-or-nothing destination that keeps a position per
// source with its events, as ferry.TransactionalSink requires.
type txnSink struct {
	mu        sync.Mutex
	committed map[string]int // event id -> commits
	order     []string
	positions map[string]ferry.Position
	stored    ferry.Position // what StoredPosition answers
	fail      func(evs []*event.Event) error
	check     func(through []ferry.SinkCheckpoint, committed map[string]int) error
	violation error
}

func (s *txnSink) Open(context.Context) error  { return nil }
func (s *txnSink) Close(context.Context) error { return nil }
func (s *txnSink) Write(context.Context, []*event.Event) error {
	return errors.New("Write called on a transactional sink")
}

func (s *txnSink) StoredPosition(context.Context, string) (ferry.Position, error) {
	return s.stored, nil
}

func (s *txnSink) WriteAt(_ context.Context, evs []*event.Event, through []ferry.SinkCheckpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(evs); err != nil {
			return err // nothing committed
		}
	}
	if s.committed == nil {
		s.committed, s.positions = map[string]int{}, map[string]ferry.Position{}
	}
	for _, e := range evs {
		s.committed[e.ID()]++
		s.order = append(s.order, e.ID())
	}
	for _, cp := range through {
		s.positions[cp.Source] = cp.Position
	}
	if s.check != nil && s.violation == nil {
		s.violation = s.check(through, s.committed)
	}
	return nil
}

func (s *txnSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed)
}

// The position committed with a transaction never passes an event that is
// not committed yet: a key failing whole transactions is held back while
// others flow, and the position waits for it.
func TestTransactionalPositionNeverPassesUncommittedEvent(t *testing.T) {
	const per = 5
	// Every event of the first 40 batches has a key of its own but for
	// a key of its own, so a failing write holds back only its own keys.
	src := &scriptSource{batches: 40, per: per, keys: 1000}
	sink := &txnSink{}
	// 23's transactions fail until another key's event (100, of batch 20;
	// 23 is in batch 4) is committed: a count of failures raced the source on a
	// loaded machine (CI: 20 retries were over before batch 20 was read).
	// If other keys did not flow while 23 is held back, 100 never commits,
	// 23 never does either, and runUntil times out.
	sink.fail = func(evs []*event.Event) error {
		for _, e := range evs {
			if e.ID() == "23" && sink.committed["100"] == 0 {
				return errors.New("transaction aborted")
			}
		}
		return nil
	}
	sawHeldBack := false
	sink.check = func(through []ferry.SinkCheckpoint, committed map[string]int) error {
		if committed["23"] == 0 && committed["100"] > 0 {
			sawHeldBack = true // other keys went on while 23 was held
		}
		for _, cp := range through {
			b, _ := strconv.Atoi(string(cp.Position))
			for n := range b * per {
				if committed[strconv.Itoa(n)] == 0 {
					return fmt.Errorf("position %s committed before event %d", cp.Position, n)
				}
			}
		}
		return nil
	}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	if err := f.runUntil(t, func() bool { return sink.count() == 200 }); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.violation != nil {
		t.Fatal(sink.violation)
	}
	if len(sink.order) != 200 {
		t.Fatalf("%d events committed for 200 distinct: an event was committed twice", len(sink.order))
	}
	if got := string(sink.positions["src"]); got != "40" {
		t.Fatalf("committed position %q, want 40", got)
	}
	if !sawHeldBack {
		t.Fatal("event 100 was not committed before 23: other keys did not flow while 23 was held back")
	}
}

// The position the sink committed wins over the store's checkpoint and is
// saved to the store.
func TestResumesFromTransactionalSinkPosition(t *testing.T) {
	for _, tc := range []struct{ store, sink, want string }{{"2", "5", "5"}, {"5", "", "5"}, {"", "3", "3"}} {
		t.Run(tc.store+"/"+tc.sink, func(t *testing.T) {
			st, err := state.Open(t.TempDir(), state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if tc.store != "" {
				_ = st.SaveCheckpoint(context.Background(), "src", ferry.Position(tc.store))
			}
			src := &scriptSource{batches: 7, per: 1, keys: 1}
			sink := &txnSink{}
			if tc.sink != "" {
				sink.stored = ferry.Position(tc.sink)
			}
			eng, _ := transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"s"}})
			rt, _ := New(Config{Store: st, Engine: eng, Sources: []SourceSpec{{Name: "src", Source: src}},
				Sinks: []SinkSpec{{Name: "s", Sink: sink}}})
			f := &fixture{store: st, rt: rt}
			if err := f.runUntil(t, func() bool { return sink.count() >= 1 }); err != nil {
				t.Fatal(err)
			}
			if string(src.opened) != tc.want {
				t.Fatalf("source opened at %q, want %q", src.opened, tc.want)
			}
		})
	}
}

// A fenced transactional sink stops the runtime with ErrFenced instead of
// retrying.
func TestFencedTransactionalSinkStopsThePipeline(t *testing.T) {
	src := &scriptSource{batches: 0, per: 2, keys: 2}
	sink := &txnSink{fail: func([]*event.Event) error {
		return fmt.Errorf("transactional id x: %w", ferry.ErrSinkFenced)
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, nil)
	err := f.runUntil(t, func() bool { return false })
	if !errors.Is(err, ErrFenced) || !errors.Is(err, ferry.ErrSinkFenced) {
		t.Fatalf("Run = %v; want an error wrapping ErrFenced and ferry.ErrSinkFenced", err)
	}
	if cp := f.checkpoint(t); cp != "" {
		t.Fatalf("checkpoint %q saved past a fenced write", cp)
	}
}
