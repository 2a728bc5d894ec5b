package pipeline

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// TestSourceFailureDrainIsBoundedWhenSinkRefuses: a source fails while its
// sink keeps refusing, transiently, the events in flight. Run must give up
// the drain after ShutdownTimeout and return the source's error, with the
// checkpoint at what was delivered and nothing dead-lettered: the refused
// events are read again after a restart.
func TestSourceFailureDrainIsBoundedWhenSinkRefuses(t *testing.T) {
	src := &scriptSource{batches: 100, per: 5, keys: 5, failAt: 4} // reads batches 1-3, events 0-14
	main := &recordSink{fail: func(e *event.Event, _ int) error {
		if n, _ := strconv.Atoi(e.ID()); n >= 5 {
			return errors.New("503 service unavailable")
		}
		return nil
	}}
	dlq := &recordSink{}
	f := newFixture(t, src, map[string]ferry.Sink{"main": main, "dlq": dlq}, func(c *Config) {
		c.ShutdownTimeout = 200 * time.Millisecond
		c.DeadLetterSink = "dlq"
		c.Engine, _ = transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"main"}})
	})
	done := make(chan error, 1)
	go func() { done <- f.rt.Run(context.Background()) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second): // a hang detector, far above the 200ms bound
		t.Fatal("Run still draining 30s after the source failed, with a 200ms shutdown timeout")
	}
	var ce *ComponentError
	if !errors.As(err, &ce) || ce.Source != "src" || err.Error() != "source src: binlog purged" {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	if cp := f.checkpoint(t); cp != "1" {
		t.Fatalf("checkpoint = %q, want 1 (the last batch delivered)", cp)
	}
	if n := f.rt.Stats().Sink("main").DeadLettered.Load(); n != 0 || len(dlq.ids()) != 0 {
		t.Fatalf("dead-lettered %d events (dead-letter sink got %v); want none", n, dlq.ids())
	}
	var stored []state.DeadLetter
	_ = f.store.DeadLetters(context.Background(), func(d state.DeadLetter) error { stored = append(stored, d); return nil })
	if len(stored) != 0 {
		t.Fatalf("store holds dead letters %+v; want none", stored)
	}
}
