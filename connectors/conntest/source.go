package conntest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferry-cdc/ferry"
)

// SourceHarness adapts one source type to the suite.
type SourceHarness struct {
	// New returns a fresh, unopened source. Every source it returns starts
	// (when opened without a checkpoint) at the same place, fixed when the
	// harness was made.
	New func(t *testing.T) ferry.Source
	// Produce makes n more changes, each in its own transaction, visible
	// to the sources New returns.
	Produce func(t *testing.T, n int)
	// IgnoreGoroutines names functions (goleak.IgnoreAnyFunction) of the
	// origin's own goroutines, as SinkHarness.IgnoreGoroutines does: an
	// in-process broker's server side of a connection the source closed
	// ends on its own schedule. The source's goroutines are always checked.
	IgnoreGoroutines []string
}

// RunSource runs the source suite. Subtests share the harness's stream, so
// they run in order and each reads what it produced after what earlier ones
// did.
func RunSource(t *testing.T, h SourceHarness) {
	t.Run("ReadsWhatWasProduced", func(t *testing.T) {
		opts := []goleak.Option{goleak.IgnoreCurrent()}
		for _, f := range h.IgnoreGoroutines {
			opts = append(opts, goleak.IgnoreAnyFunction(f))
		}
		defer goleak.VerifyNone(t, opts...)
		h.Produce(t, 3)
		s := open(t, h, nil)
		changes, _ := readN(t, s, 3)
		for _, c := range changes {
			if c.ID == "" || c.Op == 0 || c.Source == "" {
				t.Fatalf("change lacks id, op or source: %+v", c)
			}
		}
		closeSource(t, s)
	})
	t.Run("DeterministicIDs", func(t *testing.T) {
		a, b := open(t, h, nil), open(t, h, nil)
		defer closeSource(t, a)
		defer closeSource(t, b)
		ca, _ := readN(t, a, 3)
		cb, _ := readN(t, b, 3)
		for i := range ca {
			if ca[i].ID != cb[i].ID || fmt.Sprint(ca[i].After) != fmt.Sprint(cb[i].After) {
				t.Fatalf("change %d read twice differs: %s %v / %s %v", i, ca[i].ID, ca[i].After, cb[i].ID, cb[i].After)
			}
		}
	})
	t.Run("ResumesFromCheckpointWithoutGapOrRepeat", func(t *testing.T) { resumes(t, h) })
	t.Run("ReadHonoursContext", func(t *testing.T) {
		s := open(t, h, nil)
		defer closeSource(t, s)
		// Drain whatever is there, then a Read with nothing to return must
		// end with its context.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			start := time.Now()
			_, err := s.Read(ctx)
			cancel()
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Read with an ending context = %v, want context.DeadlineExceeded", err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("Read returned %v after its context ended", d)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("Read keeps returning changes nobody produced")
			}
		}
	})
}

func resumes(t *testing.T, h SourceHarness) {
	s := open(t, h, nil)
	first, cp, acks := readAll(t, s, 3)
	for _, ack := range acks {
		if err := ack(context.Background(), nil); err != nil {
			t.Fatalf("Ack = %v", err)
		}
	}
	closeSource(t, s)
	h.Produce(t, 2)
	s2 := open(t, h, cp)
	defer closeSource(t, s2)
	next, _ := readN(t, s2, 2)
	seen := map[string]bool{}
	for _, c := range first {
		seen[c.ID] = true
	}
	for _, c := range next {
		if seen[c.ID] {
			t.Fatalf("change %s read again after resuming from its checkpoint", c.ID)
		}
	}
}

func open(t *testing.T, h SourceHarness, from ferry.Position) ferry.Source {
	t.Helper()
	s := h.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Open(ctx, from); err != nil {
		t.Fatalf("Open = %v", err)
	}
	return s
}

func closeSource(t *testing.T, s ferry.Source) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

// readN reads until at least n changes arrived (n == 0: one batch) and
// returns them with the last checkpoint seen.
func readN(t *testing.T, s ferry.Source, n int) ([]ferry.Change, ferry.Position) {
	t.Helper()
	out, cp, _ := readAll(t, s, n)
	return out, cp
}

// readAll is readN that also returns the batches' acks, in order. It keeps
// reading (briefly) until a checkpoint covers what it read, for sources that
// checkpoint.
func readAll(t *testing.T, s ferry.Source, n int) ([]ferry.Change, ferry.Position, []ferry.AckFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []ferry.Change
	var cp ferry.Position
	var acks []ferry.AckFunc
	checkpointed := false
	for first := true; first || len(out) < n; first = false {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d changes = %v", len(out), n, err)
		}
		checkSize(t, b)
		out = append(out, b.Changes...)
		if b.Ack != nil {
			acks = append(acks, b.Ack)
		}
		if b.Checkpoint != nil {
			cp, checkpointed = b.Checkpoint, true
		} else if len(b.Changes) > 0 {
			checkpointed = false
		}
	}
	// A checkpointing source's last batch read may end mid-transaction:
	// read on until a checkpoint covers everything read.
	for cp != nil && !checkpointed {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read while waiting for a checkpoint = %v", err)
		}
		checkSize(t, b)
		out = append(out, b.Changes...)
		if b.Ack != nil {
			acks = append(acks, b.Ack)
		}
		cp, checkpointed = orPos(b.Checkpoint, cp), b.Checkpoint != nil
	}
	return out, cp, acks
}

// checkSize fails t when b carries a Size other than its changes' (a source
// need not set it; one it sets drives the pipeline's memory bound).
func checkSize(t *testing.T, b ferry.Batch) {
	t.Helper()
	if want := ferry.BatchSize(b.Changes); b.Size != 0 && b.Size != want {
		t.Fatalf("batch of %d changes has Size %d, its changes' sizes add up to %d", len(b.Changes), b.Size, want)
	}
}

func orPos(p, def ferry.Position) ferry.Position {
	if p != nil {
		return p
	}
	return def
}
