// Package conntest is the acceptance suite every Ferry connector passes: the
// lifecycle and delivery contracts of ferry.Source and ferry.Sink, checked
// the same way for each, with goroutine-leak checks.
package conntest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.uber.org/goleak"

	"github.com/ferry-cdc/ferry"
)

// SinkHarness adapts one sink type to the suite.
type SinkHarness struct {
	// New returns a fresh, unopened sink. Sinks it returns may share one
	// destination.
	New func(t *testing.T) ferry.Sink
	// Received returns every event the destination got so far, in arrival
	// order, including those of earlier subtests (the suite looks at what
	// was appended). Nil when the destination cannot be observed, as for a
	// discarding sink.
	Received func(t *testing.T) []event.Event
	// IgnoreGoroutines names functions (goleak.IgnoreAnyFunction) of the
	// destination's own goroutines, such as an in-process broker's
	// server-side connections, which end on their own schedule after the
	// sink closed. The sink's goroutines are always checked.
	IgnoreGoroutines []string
	// FailEvents, when set, makes the destination refuse, transiently,
	// every event whose id match picks, until it is called with nil. The
	// suite then checks the same-key rule: after an event fails, no later
	// event of its ordering key is delivered in that Write.
	FailEvents func(t *testing.T, match func(id string) bool)
}

// receiveWait bounds how long the suite waits for an asynchronous
// destination to show what a successful Write delivered.
const receiveWait = 10 * time.Second

// RunSink runs the sink suite. Subtests run in order; each checks that it
// leaves no goroutine behind.
func RunSink(t *testing.T, h SinkHarness) {
	run := func(name string, fn func(t *testing.T, h SinkHarness)) {
		t.Run(name, func(t *testing.T) {
			opts := []goleak.Option{goleak.IgnoreCurrent()}
			for _, f := range h.IgnoreGoroutines {
				opts = append(opts, goleak.IgnoreAnyFunction(f))
			}
			defer goleak.VerifyNone(t, opts...)
			fn(t, h)
		})
	}
	run("OpenClose", func(t *testing.T, h SinkHarness) {
		s := h.New(t)
		mustOpen(t, s)
		mustClose(t, s)
	})
	run("EmptyWrite", emptyWrite)
	run("DeliversOnceInKeyOrder", deliversOnceInKeyOrder)
	run("FailedEventHoldsBackItsKey", failedEventHoldsBackItsKey)
	run("CancelledContext", cancelledContext)
	run("WriteAfterClose", writeAfterClose)
	run("CloseTwice", closeTwice)
}

func emptyWrite(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	defer mustClose(t, s)
	before := len(received(t, h))
	for _, batch := range [][]*event.Event{nil, {}} {
		if err := s.Write(context.Background(), batch); err != nil {
			t.Fatalf("Write(%d events) = %v, want nil", len(batch), err)
		}
	}
	if n := len(received(t, h)) - before; n != 0 {
		t.Fatalf("empty writes delivered %d events", n)
	}
}

func deliversOnceInKeyOrder(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	before := len(received(t, h))
	events := Events(50, 5)
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatalf("Write(50 events) = %v, want nil", err)
	}
	mustClose(t, s)
	if h.Received == nil {
		return
	}
	got := waitReceived(t, h, before, len(events))
	checkOnce(t, events, got)
	if len(got) != len(events) {
		t.Fatalf("destination got %d events, want %d", len(got), len(events))
	}
	last := map[string]int{}
	for _, g := range got {
		key, n := PartitionKey(&g), EventIndex(g.ID())
		if prev, ok := last[key]; ok && prev > n {
			t.Fatalf("partition key %s: event %d arrived after event %d", key, n, prev)
		}
		last[key] = n
		if err := sameEvent(events[n], &g); err != nil {
			t.Fatalf("event %s: %v", g.ID(), err)
		}
	}
}

// failedEventHoldsBackItsKey injects a failure of one event and checks that
// the sink delivered no later event of its key, reported every event it did
// not deliver, and delivers the rest in key order once retried.
func failedEventHoldsBackItsKey(t *testing.T, h SinkHarness) {
	if h.FailEvents == nil || h.Received == nil {
		t.Skip("the harness cannot fail single events at the destination")
	}
	s := h.New(t)
	mustOpen(t, s)
	defer mustClose(t, s)
	before := len(received(t, h))
	events := Events(40, 4)
	poison := events[5]
	h.FailEvents(t, func(id string) bool { return id == poison.ID() })
	err := s.Write(context.Background(), events)
	h.FailEvents(t, nil)
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Failed(5) == nil || ferry.IsPermanent(be.Failed(5)) {
		t.Fatalf("Write = %v, want a *ferry.BatchError failing event 5 transiently", err)
	}
	var retry []*event.Event
	for i, e := range events {
		if be.Failed(i) != nil {
			retry = append(retry, e)
		} else if ferry.OrderingKey(e) == ferry.OrderingKey(poison) && i > 5 {
			t.Fatalf("event %d of the failed event's key was acknowledged: it overtook event 5", i)
		}
	}
	got := waitReceived(t, h, before, len(events)-len(retry))
	ids := checkOnce(t, events, got)
	for i, e := range events {
		if be.Failed(i) == nil && !ids[e.ID()] {
			t.Fatalf("event %d was acknowledged but did not arrive", i)
		}
		if be.Failed(i) != nil && ids[e.ID()] {
			t.Fatalf("event %d was reported failed but arrived", i)
		}
	}
	if err := s.Write(context.Background(), retry); err != nil {
		t.Fatalf("retry Write = %v", err)
	}
	got = waitReceived(t, h, before, len(events))
	checkOnce(t, events, got)
	last := map[string]int{}
	for _, g := range got {
		key, n := ferry.OrderingKey(&g), EventIndex(g.ID())
		if prev, ok := last[key]; ok && prev > n {
			t.Fatalf("key %s: event %d arrived after event %d", key, n, prev)
		}
		last[key] = n
	}
}

func cancelledContext(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	defer mustClose(t, s)
	before := len(received(t, h))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	events := Events(20, 4)
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, events) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Write with a cancelled context did not return within 2s")
	}
	if h.Received == nil {
		return
	}
	// The sink may deliver the batch or refuse it, in whole or in part, but
	// its answer must be true: nil means all arrived, a BatchError means all
	// it does not name arrived; and nothing may arrive twice.
	want := 0
	var be *ferry.BatchError
	switch {
	case err == nil:
		want = len(events)
	case errors.As(err, &be):
		want = len(events) - be.Len()
	}
	got := waitReceived(t, h, before, want)
	ids := checkOnce(t, events, got)
	for i, e := range events {
		acked := err == nil || (be != nil && be.Failed(i) == nil)
		if acked && !ids[e.ID()] {
			t.Fatalf("Write = %v, but event %s, which it acknowledged, did not arrive", err, e.ID())
		}
	}
}

func writeAfterClose(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	mustClose(t, s)
	if err := s.Write(context.Background(), Events(1, 1)); !errors.Is(err, ferry.ErrClosed) {
		t.Fatalf("Write after Close = %v, want an error wrapping ferry.ErrClosed", err)
	}
}

// closeTwice checks that a second Close neither panics nor fails with
// anything but ferry.ErrClosed: shutdown paths may race to close.
func closeTwice(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	mustClose(t, s)
	if err := s.Close(context.Background()); err != nil && !errors.Is(err, ferry.ErrClosed) {
		t.Fatalf("second Close = %v, want nil or ferry.ErrClosed", err)
	}
}

// checkOnce fails unless every event in got is one of want, at most once,
// and returns the ids seen.
func checkOnce(t *testing.T, want []*event.Event, got []event.Event) map[string]bool {
	t.Helper()
	known := make(map[string]bool, len(want))
	for _, e := range want {
		known[e.ID()] = true
	}
	seen := make(map[string]bool, len(got))
	for _, g := range got {
		switch {
		case !known[g.ID()]:
			t.Fatalf("destination got event %q, which was not written", g.ID())
		case seen[g.ID()]:
			t.Fatalf("destination got event %s twice", g.ID())
		}
		seen[g.ID()] = true
	}
	return seen
}

// waitReceived returns what arrived after the first `before` events, once
// at least want did or receiveWait passed.
func waitReceived(t *testing.T, h SinkHarness, before, want int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(receiveWait)
	for {
		got := received(t, h)[before:]
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func received(t *testing.T, h SinkHarness) []event.Event {
	t.Helper()
	if h.Received == nil {
		return nil
	}
	return h.Received(t)
}

func sameEvent(want, got *event.Event) error {
	switch {
	case got.SpecVersion() != want.SpecVersion():
		return fmt.Errorf("specversion %q, want %q", got.SpecVersion(), want.SpecVersion())
	case got.Type() != want.Type() || got.Source() != want.Source() || got.Subject() != want.Subject():
		return fmt.Errorf("type/source/subject %q %q %q, want %q %q %q",
			got.Type(), got.Source(), got.Subject(), want.Type(), want.Source(), want.Subject())
	case !got.Time().Equal(want.Time()):
		return fmt.Errorf("time %v, want %v", got.Time(), want.Time())
	case got.DataContentType() != want.DataContentType():
		return fmt.Errorf("datacontenttype %q, want %q", got.DataContentType(), want.DataContentType())
	case string(got.Data()) != string(want.Data()):
		return fmt.Errorf("data %s, want %s", got.Data(), want.Data())
	case PartitionKey(got) != PartitionKey(want):
		return fmt.Errorf("partitionkey %q, want %q", PartitionKey(got), PartitionKey(want))
	}
	return nil
}

func mustOpen(t *testing.T, s ferry.Sink) {
	t.Helper()
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open = %v", err)
	}
}

func mustClose(t *testing.T, s ferry.Sink) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
}
