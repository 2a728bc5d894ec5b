package pipeline

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// switchFence allows writes until revoke; then Hold fails and the contexts
// it handed out are cancelled, as ha.Fence does on a lease loss.
type switchFence struct {
	term    context.Context
	end     context.CancelCauseFunc
	revoked atomic.Bool
}

var errTestLost = errors.New("test lease lost")

func newSwitchFence() *switchFence {
	f := &switchFence{}
	f.term, f.end = context.WithCancelCause(context.Background())
	return f
}

func (f *switchFence) revoke() { f.revoked.Store(true); f.end(errTestLost) }

func (f *switchFence) Hold(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if f.term.Err() != nil {
		return nil, nil, context.Cause(f.term)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(f.term, func() { cancel(context.Cause(f.term)) })
	return wctx, func() { stop(); cancel(nil) }, nil
}

// slowSink takes its time on every Write; it records what it accepted, the
// writes started after the fence was revoked, and writes cut short.
type slowSink struct {
	recordSink
	fence      *switchFence
	lateStarts atomic.Int64
	cutShort   atomic.Int64
}

func (s *slowSink) Write(ctx context.Context, evs []*event.Event) error {
	if s.fence.revoked.Load() {
		s.lateStarts.Add(1)
	}
	err := s.recordSink.Write(ctx, evs)
	if err != nil && ctx.Err() != nil {
		s.cutShort.Add(1)
	}
	return err
}

// TestFenceAbandonsInFlightWork: when the fence is revoked while a slow
// sink has most of the events still to write, the runtime stops at once
// instead of draining for ShutdownTimeout: the Write in progress is cut
// short, no Write starts afterwards, Run fails with ErrFenced, and no
// checkpoint passes an undelivered event.
func TestFenceAbandonsInFlightWork(t *testing.T) {
	src := &scriptSource{batches: 100, per: 5, keys: 3}
	fence := newSwitchFence()
	sink := &slowSink{fence: fence}
	sink.delay = 50 * time.Millisecond
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink}, func(c *Config) {
		c.Fence = fence
		c.MaxSinkBatch = 5
		c.ShutdownTimeout = time.Hour // a drain would never end within the test
	})
	done := make(chan error, 1)
	go func() { done <- f.rt.Run(context.Background()) }()
	deadline := time.After(10 * time.Second)
	for len(sink.ids()) < 20 {
		select {
		case err := <-done:
			t.Fatalf("stopped before the revocation: %v", err)
		case <-deadline:
			t.Fatal("20 events not delivered in 10s")
		case <-time.After(time.Millisecond):
		}
	}
	fence.revoke()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the runtime kept going after the fence was revoked (draining?)")
	}
	if !errors.Is(err, ErrFenced) || !errors.Is(err, errTestLost) {
		t.Fatalf("Run = %v, want ErrFenced wrapping the loss", err)
	}
	delivered := len(sink.ids())
	if n := sink.lateStarts.Load(); n != 0 {
		t.Errorf("%d writes started after the fence was revoked", n)
	}
	if delivered >= 500 {
		t.Fatalf("all %d events delivered: nothing was in flight to abandon", delivered)
	}
	cp, _ := strconv.Atoi(f.checkpoint(t))
	if cp*5 > delivered {
		t.Errorf("checkpoint %d covers %d events, only %d delivered", cp, cp*5, delivered)
	}
	if n := storedDeadLetters(t, f); n != 0 {
		t.Errorf("%d dead letters after the revocation", n)
	}
	t.Logf("delivered %d of 500, checkpoint %d, writes cut short %d", delivered, cp, sink.cutShort.Load())
}

// TestFenceRefusesDeadLetters: a deposed leader neither sends dead letters
// to the dead-letter sink nor stores them; its successor decides.
func TestFenceRefusesDeadLetters(t *testing.T) {
	src := &scriptSource{batches: 3, per: 2, keys: 2}
	fence := newSwitchFence()
	var dlqWrites atomic.Int64
	dlq := &recordSink{onWrite: func() { dlqWrites.Add(1) }}
	var once sync.Once
	sink := &recordSink{fail: func(*event.Event, int) error {
		once.Do(fence.revoke) // revoked while the refusal comes back
		return ferry.Permanent(errors.New("400 bad event"))
	}}
	f := newFixture(t, src, map[string]ferry.Sink{"s": sink, "dlq": dlq}, func(c *Config) {
		c.Fence = fence
		c.DeadLetterSink = "dlq"
		c.Engine, _ = transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"s"}})
	})
	err := f.rt.Run(context.Background())
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("Run = %v, want ErrFenced", err)
	}
	if n := storedDeadLetters(t, f); n != 0 || dlqWrites.Load() != 0 {
		t.Errorf("a fenced runtime dead-lettered: %d stored, %d writes to the dead-letter sink", n, dlqWrites.Load())
	}
}

func storedDeadLetters(t *testing.T, f *fixture) int {
	t.Helper()
	n := 0
	if err := f.store.DeadLetters(context.Background(), func(state.DeadLetter) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}
