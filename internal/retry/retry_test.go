package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ferry-cdc/ferry"
)

// fakeClock advances only when slept on, and records every wait.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return nil
}

// seeded returns a deterministic source, logging its seed.
func seeded(t *testing.T) (*rand.Rand, uint64) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0)), seed
}

// TestDelayGrowsCapsAndJitters checks every delay of a long run against the
// policy's bounds: in [d/2, d] for d = initial doubled per failure and
// capped, and that the jitter actually varies.
func TestDelayGrowsCapsAndJitters(t *testing.T) {
	r, _ := seeded(t)
	p := Policy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 3 * time.Second}.WithDefaults()
	distinct := map[time.Duration]bool{}
	for failures := 1; failures <= 40; failures++ {
		want := min(p.InitialBackoff<<min(failures-1, 30), p.MaxBackoff)
		for range 50 {
			d := p.delay(failures, errors.New("boom"), r)
			if d < want/2 || d > want {
				t.Fatalf("failure %d: delay %v outside [%v, %v]", failures, d, want/2, want)
			}
			distinct[d] = true
		}
	}
	if len(distinct) < 100 {
		t.Fatalf("only %d distinct delays in 2000 draws: no jitter", len(distinct))
	}
}

// TestDelayDeterministic: one seed, one sequence.
func TestDelayDeterministic(t *testing.T) {
	_, seed := seeded(t)
	run := func() []time.Duration {
		b := New(Reconnect(), WithRand(rand.New(rand.NewPCG(seed, 0))), WithClock(&fakeClock{}))
		var out []time.Duration
		for range 10 {
			out = append(out, b.Next(errors.New("down")))
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different delay %d: %v and %v", i, a[i], b[i])
		}
	}
}

func TestRetryAfterHonouredButCapped(t *testing.T) {
	r, _ := seeded(t)
	p := Policy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: 5 * time.Second}.WithDefaults()
	cases := []struct {
		after    time.Duration
		min, max time.Duration
	}{
		{after: 3 * time.Second, min: 3 * time.Second, max: 3 * time.Second},               // longer than the backoff: honoured
		{after: time.Hour, min: 5 * time.Second, max: 5 * time.Second},                     // capped
		{after: time.Millisecond, min: 50 * time.Millisecond, max: 100 * time.Millisecond}, // shorter: the backoff wins
	}
	for _, c := range cases {
		err := fmt.Errorf("send: %w", ferry.RetryAfter(errors.New("429"), c.after))
		if d := p.delay(1, err, r); d < c.min || d > c.max {
			t.Errorf("Retry-After %v: delay %v, want within [%v, %v]", c.after, d, c.min, c.max)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := Policy{InitialBackoff: time.Minute, MaxBackoff: time.Second}.WithDefaults()
	want := Policy{InitialBackoff: time.Minute, MaxBackoff: time.Minute, MaxRetryAfter: time.Minute}
	if got != want {
		t.Fatalf("WithDefaults = %+v, want %+v", got, want)
	}
	if got := (Policy{}).WithDefaults(); got != Default() {
		t.Fatalf("zero policy = %+v, want Default %+v", got, Default())
	}
}

func TestEveryStaysWithinPeriod(t *testing.T) {
	r, _ := seeded(t)
	b := New(Every(time.Second), WithRand(r), WithClock(&fakeClock{}))
	for range 100 {
		if d := b.Next(errors.New("x")); d < time.Second/2 || d > time.Second {
			t.Fatalf("Every(1s) waited %v", d)
		}
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	r, _ := seeded(t)
	clock := &fakeClock{now: time.Unix(0, 0)}
	b := New(Policy{InitialBackoff: time.Second, MaxBackoff: 4 * time.Second}, WithRand(r), WithClock(clock))
	calls := 0
	var notified []int
	var told []time.Duration
	err := b.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 6 {
			return errors.New("refused")
		}
		return nil
	}, func(attempt int, _ error, wait time.Duration) {
		notified = append(notified, attempt)
		told = append(told, wait)
	})
	if err != nil || calls != 6 {
		t.Fatalf("Do = %v after %d calls, want nil after 6", err, calls)
	}
	if !slices.Equal(notified, []int{1, 2, 3, 4, 5}) || !slices.Equal(told, clock.waits) {
		t.Fatalf("notified attempts %v with waits %v; waited %v", notified, told, clock.waits)
	}
	caps := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range clock.waits {
		if w < caps[i]/2 || w > caps[i] {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, w, caps[i]/2, caps[i])
		}
	}
}

func TestDoPermanentStopsAtOnce(t *testing.T) {
	clock := &fakeClock{}
	fatal := errors.New("access denied")
	calls := 0
	err := New(Reconnect(), WithClock(clock)).Do(context.Background(), func(context.Context) error {
		calls++
		return Permanent(fmt.Errorf("connect: %w", fatal))
	}, nil)
	if !errors.Is(err, fatal) || calls != 1 || len(clock.waits) != 0 {
		t.Fatalf("Do = %v after %d calls and %d waits, want the permanent error at once", err, calls, len(clock.waits))
	}
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		t.Fatal("Do returned the Permanent marker instead of the error it wraps")
	}
}

func TestDoStopsAtMaxAttempts(t *testing.T) {
	clock := &fakeClock{}
	calls := 0
	last := errors.New("third")
	err := New(Policy{InitialBackoff: time.Millisecond, MaxAttempts: 3}, WithClock(clock)).Do(context.Background(), func(context.Context) error {
		calls++
		if calls == 3 {
			return last
		}
		return errors.New("early")
	}, nil)
	if err != last || calls != 3 || len(clock.waits) != 2 {
		t.Fatalf("Do = %v after %d calls, %d waits; want the third error after 3 calls, 2 waits", err, calls, len(clock.waits))
	}
}

// TestDoDeadline: no wait runs past the deadline, and one last attempt is
// made at it.
func TestDoDeadline(t *testing.T) {
	r, _ := seeded(t)
	start := time.Unix(1000, 0)
	clock := &fakeClock{now: start}
	deadline := start.Add(10 * time.Second)
	var attempts []time.Time
	err := New(Reconnect(), Until(deadline), WithRand(r), WithClock(clock)).Do(context.Background(), func(context.Context) error {
		attempts = append(attempts, clock.now)
		return errors.New("unreachable")
	}, nil)
	if err == nil {
		t.Fatal("Do succeeded against a server that never answers")
	}
	if lastAt := attempts[len(attempts)-1]; !lastAt.Equal(deadline) {
		t.Fatalf("last attempt at %v, want at the deadline %v (attempts %v)", lastAt.Sub(start), deadline.Sub(start), len(attempts))
	}
	if clock.now.After(deadline) {
		t.Fatalf("waited until %v, past the deadline", clock.now.Sub(start))
	}
}

func TestDoContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	opErr := errors.New("interrupted")
	err := New(Reconnect(), WithClock(&fakeClock{})).Do(ctx, func(context.Context) error {
		cancel()
		return opErr
	}, nil)
	if err != opErr {
		t.Fatalf("Do = %v, want the failed attempt's error once ctx ended", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	err = New(Reconnect(), WithClock(&fakeClock{})).Do(ctx2, func(context.Context) error { return nil }, nil)
	if err != nil {
		t.Fatalf("Do with an attempt that succeeds = %v", err)
	}
}

func TestRealClockSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (realClock{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context = %v", err)
	}
}
