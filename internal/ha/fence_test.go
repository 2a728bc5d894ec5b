package ha

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFenceTerm walks a term through its life: refused before it begins,
// held back by the takeover wait, extended by renewals, and ended by its
// deadline passing without a renewal, which cancels the writes in progress
// and counts as a loss.
func TestFenceTerm(t *testing.T) {
	f := newFence(time.Second)
	if _, _, err := f.Hold(context.Background()); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("Hold before any term = %v, want ErrNotHeld", err)
	}
	begun := time.Now()
	f.begin(begun, 100*time.Millisecond)
	ctx, release, err := f.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(begun); waited < 100*time.Millisecond {
		t.Errorf("Hold allowed a write %v into the takeover wait of 100ms", waited)
	}
	for range 4 { // renewals keep a long write alive past the first deadline
		time.Sleep(300 * time.Millisecond)
		f.renewed(time.Now())
	}
	if ctx.Err() != nil || f.Err() != nil {
		t.Fatalf("write cancelled while renewed: %v, %v", context.Cause(ctx), f.Err())
	}
	<-ctx.Done() // no more renewals: the deadline ends the term
	release()
	if !errors.Is(context.Cause(ctx), ErrLost) || !Lost(f.Term()) {
		t.Fatalf("cause = %v, want ErrLost", context.Cause(ctx))
	}
	if _, _, err := f.Hold(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("Hold after the deadline = %v, want ErrLost", err)
	}
	f.renewed(time.Now()) // a late renewal does not revive an ended term
	if f.Err() == nil {
		t.Fatal("an ended term came back")
	}
}

// TestFenceDeadlineWithoutTimer: a process frozen past its deadline may run
// before the expiry timer does; Hold checks the clock itself.
func TestFenceDeadlineWithoutTimer(t *testing.T) {
	f := newFence(time.Hour)
	f.begin(time.Now().Add(-2*time.Hour), 0) // checked two hours ago
	f.expiry.Stop()                          // as if the timer had not fired yet
	if _, _, err := f.Hold(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("Hold past the deadline = %v, want ErrLost", err)
	}
}

// TestFenceRelease: a released term is over but not lost.
func TestFenceRelease(t *testing.T) {
	f := newFence(time.Minute)
	f.begin(time.Now(), 0)
	ctx, release, err := f.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	f.end(errReleased)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the write's context outlived the term")
	}
	if Lost(f.Term()) {
		t.Fatal("a released term counts as lost")
	}
}

// TestFenceHeldWriteEndsByTheClock: a write held before a freeze must not
// go on after it just because the expiry timer has not run yet (a frozen
// process's goroutines all resume at once): the held context reports
// itself done once the deadline has passed, and then is.
func TestFenceHeldWriteEndsByTheClock(t *testing.T) {
	f := newFence(time.Hour)
	f.begin(time.Now().Add(-time.Hour+200*time.Millisecond), 0) // 200ms of validity left
	ctx, release, err := f.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	f.mu.Lock()
	f.expiry.Stop() // as if the timer had not fired yet
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		t.Fatalf("held write cancelled within its validity: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if ctx.Err() == nil {
		t.Fatal("held write still live past its deadline")
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Err reported the write done but Done is open")
	}
	if !errors.Is(context.Cause(ctx), ErrLost) {
		t.Fatalf("cause = %v, want ErrLost", context.Cause(ctx))
	}
}
