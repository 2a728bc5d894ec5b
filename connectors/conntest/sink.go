// Package conntest is the acceptance suite every Ferry connector passes:
// the lifecycle and delivery contracts of ferry.Source and ferry.Sink,
// checked the same way for each, with goroutine-leak checks.
package conntest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.uber.org/goleak"

	"github.com/ferry-cdc/ferry"
)

// SinkHarness adapts one sink type to the suite.
type SinkHarness struct {
	// New returns a fresh, unopened sink.
	New func(t *testing.T) ferry.Sink
	// Received returns what the destination got so far; nil when the
	// destination cannot be observed (a discarding sink).
	Received func(t *testing.T) []event.Event
}

// Events builds n valid events over `keys` partition keys, with JSON data.
func Events(n, keys int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		e := event.New()
		e.SetID("conntest-" + strconv.Itoa(i))
		e.SetSource("/ferry/conntest/db/t")
		e.SetType("com.example.db.t.created")
		key := strconv.Itoa(i % keys)
		e.SetSubject(key)
		e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		e.SetExtension("partitionkey", "db.t/"+key)
		_ = e.SetData(event.ApplicationJSON, map[string]any{"n": i, "key": key, "text": "héllo 🚀"})
		out[i] = &e
	}
	return out
}

// RunSink runs the sink suite.
func RunSink(t *testing.T, h SinkHarness) {
	t.Run("OpenClose", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		s := h.New(t)
		mustOpen(t, s)
		mustClose(t, s)
	})
	t.Run("EmptyWrite", func(t *testing.T) {
		s := h.New(t)
		mustOpen(t, s)
		defer mustClose(t, s)
		if err := s.Write(context.Background(), nil); err != nil {
			t.Fatalf("Write(empty) = %v", err)
		}
	})
	t.Run("DeliversInKeyOrder", func(t *testing.T) { deliversInKeyOrder(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { cancelledContext(t, h) })
	t.Run("WriteAfterClose", func(t *testing.T) {
		s := h.New(t)
		mustOpen(t, s)
		mustClose(t, s)
		err := s.Write(context.Background(), Events(1, 1))
		if !errors.Is(err, ferry.ErrClosed) {
			t.Fatalf("Write after Close = %v, want ferry.ErrClosed", err)
		}
	})
}

func deliversInKeyOrder(t *testing.T, h SinkHarness) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := h.New(t)
	mustOpen(t, s)
	before := received(t, h)
	events := Events(50, 5)
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatalf("Write = %v", err)
	}
	mustClose(t, s)
	if h.Received == nil {
		return
	}
	got := h.Received(t)[len(before):]
	if len(got) != len(events) {
		t.Fatalf("destination got %d events, want %d", len(got), len(events))
	}
	lastByKey := map[string]int{}
	seen := map[string]bool{}
	byID := map[string]*event.Event{}
	for _, e := range events {
		byID[e.ID()] = e
	}
	for _, g := range got {
		want, ok := byID[g.ID()]
		if !ok || seen[g.ID()] {
			t.Fatalf("unexpected or duplicate event %s", g.ID())
		}
		seen[g.ID()] = true
		if err := sameEvent(want, &g); err != nil {
			t.Fatalf("event %s: %v", g.ID(), err)
		}
		n, _ := strconv.Atoi(g.ID()[len("conntest-"):])
		if prev, ok := lastByKey[g.Subject()]; ok && prev > n {
			t.Fatalf("key %s: event %d arrived after %d", g.Subject(), n, prev)
		}
		lastByKey[g.Subject()] = n
	}
}

func cancelledContext(t *testing.T, h SinkHarness) {
	s := h.New(t)
	mustOpen(t, s)
	defer mustClose(t, s)
	before := len(received(t, h))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, Events(20, 4)) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Write with a cancelled context did not return within 2s")
	}
	if h.Received == nil {
		return
	}
	// A sink may finish an already cancelled batch or refuse it, but it must
	// report which: nil means everything arrived.
	if n := len(received(t, h)) - before; err == nil && n != 20 {
		t.Fatalf("Write returned nil but %d of 20 events arrived", n)
	}
}

func received(t *testing.T, h SinkHarness) []event.Event {
	if h.Received == nil {
		return nil
	}
	return h.Received(t)
}

func sameEvent(want, got *event.Event) error {
	switch {
	case got.SpecVersion() != "1.0":
		return fmt.Errorf("specversion %q", got.SpecVersion())
	case got.Type() != want.Type() || got.Source() != want.Source() || got.Subject() != want.Subject():
		return fmt.Errorf("attributes differ: got %s %s %s", got.Type(), got.Source(), got.Subject())
	case !got.Time().Equal(want.Time()):
		return fmt.Errorf("time %v, want %v", got.Time(), want.Time())
	case string(got.Data()) != string(want.Data()):
		return fmt.Errorf("data %s, want %s", got.Data(), want.Data())
	case fmt.Sprint(got.Extensions()["partitionkey"]) != fmt.Sprint(want.Extensions()["partitionkey"]):
		return fmt.Errorf("partitionkey %v, want %v", got.Extensions()["partitionkey"], want.Extensions()["partitionkey"])
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
