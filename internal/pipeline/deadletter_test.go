package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// exclusiveSink wraps a sink and records whether two Writes ever ran at
// once, which the ferry.Sink contract forbids.
type exclusiveSink struct {
	*recordSink
	active     atomic.Int32
	overlapped atomic.Bool
}

func (s *exclusiveSink) Write(ctx context.Context, evs []*event.Event) error {
	if s.active.Add(1) > 1 {
		s.overlapped.Store(true)
	}
	defer s.active.Add(-1)
	return s.recordSink.Write(ctx, evs)
}

// TestDeadLettersGoThroughTheDeadLetterSinkWorker: another sink's dead
// letters are written by the dead-letter sink's own worker, between its own
// Writes (never two at once), with its retries and counted in its stats;
// nothing reaches the store when the dead-letter sink takes them in the end.
func TestDeadLettersGoThroughTheDeadLetterSinkWorker(t *testing.T) {
	const changes = 200
	src := &scriptSource{batches: changes / 10, per: 10, keys: changes}
	main := &recordSink{fail: func(e *event.Event, _ int) error {
		if n, _ := strconv.Atoi(e.ID()); n%2 == 1 {
			return ferry.Permanent(errors.New("422 unprocessable"))
		}
		return nil
	}}
	// The dead-letter sink also gets every change for itself, and fails
	// each dead letter's first attempt.
	letterTries := map[string]int{} // the recordSink's lock guards it
	dlq := &exclusiveSink{recordSink: &recordSink{delay: 200 * time.Microsecond, fail: func(e *event.Event, _ int) error {
		if e.Extensions()["deadlettersink"] == nil {
			return nil
		}
		if letterTries[e.ID()]++; letterTries[e.ID()] == 1 {
			return errors.New("dead-letter topic leader moving")
		}
		return nil
	}}}
	f := newFixture(t, src, map[string]ferry.Sink{"main": main, "dlq": dlq}, func(c *Config) { c.DeadLetterSink = "dlq" })
	stats := f.rt.Stats()
	if err := f.runUntil(t, func() bool {
		return stats.Sink("main").DeadLettered.Load() == changes/2 && f.checkpoint(t) == strconv.Itoa(changes/10)
	}); err != nil {
		t.Fatal(err)
	}
	letters := 0
	for _, e := range dlq.got {
		if e.Extensions()["deadlettersink"] == "main" {
			letters++
		}
	}
	if letters != changes/2 {
		t.Errorf("dead-letter sink accepted %d letters, want %d", letters, changes/2)
	}
	ds := stats.Sink("dlq")
	if got := ds.Delivered.Load(); got != changes+changes/2 {
		t.Errorf("dead-letter sink counted %d delivered, want %d (its own events and the letters)", got, changes+changes/2)
	}
	if ds.Retries.Load() < changes/2 || ds.Failures.Load() == 0 {
		t.Errorf("dead-letter sink counted %d retries and %d failed writes; every letter failed once", ds.Retries.Load(), ds.Failures.Load())
	}
	if dlq.overlapped.Load() {
		t.Error("two Writes ran at once on the dead-letter sink")
	}
	if n := storedDeadLetters(t, f); n != 0 {
		t.Errorf("%d dead letters stored; the dead-letter sink took them all after a retry", n)
	}
}

// TestDeadLettersStoredWhileTheDeadLetterSinkIsDown: while the dead-letter
// sink fails every Write (its worker pauses), another sink's dead letters
// are stored in the state store instead of waiting on it, none lost.
func TestDeadLettersStoredWhileTheDeadLetterSinkIsDown(t *testing.T) {
	const changes = 100
	src := &scriptSource{batches: changes / 10, per: 10, keys: changes}
	main := &recordSink{fail: func(e *event.Event, _ int) error {
		if n, _ := strconv.Atoi(e.ID()); n%2 == 1 {
			return ferry.Permanent(errors.New("422 unprocessable"))
		}
		return nil
	}}
	dlq := &recordSink{fail: func(*event.Event, int) error { return errors.New("dead-letter topic unavailable") }}
	f := newFixture(t, src, map[string]ferry.Sink{"main": main, "dlq": dlq}, func(c *Config) { c.DeadLetterSink = "dlq" })
	stats := f.rt.Stats()
	if err := f.runUntil(t, func() bool { return stats.Sink("main").DeadLettered.Load() == changes/2 }); err != nil {
		t.Fatal(err)
	}
	if n := storedDeadLetters(t, f); n != changes/2 {
		t.Fatalf("%d dead letters stored, want all %d the dead-letter sink could not take", n, changes/2)
	}
	if len(dlq.got) != 0 {
		t.Fatalf("the failing dead-letter sink accepted %d events", len(dlq.got))
	}
}
