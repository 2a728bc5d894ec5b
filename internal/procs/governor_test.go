package procs

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// governed is a governor over 4 processors whose switches are recorded
// instead of applied.
func governed() (*Governor, *[]int) {
	var sets []int
	g := New(4, nil)
	g.set = func(n int) { sets = append(sets, n) }
	return g, &sets
}

func TestGovernorOneProcessorOnlyAfterALowSpell(t *testing.T) {
	g, sets := governed()
	for _, cpus := range []float64{0.1, 0.2, 0.9, 0.1, 0.1} { // the busy window restarts the count
		g.observe(cpus)
	}
	if len(*sets) != 0 || g.procs != 4 {
		t.Fatalf("switched after %v with no %d low windows in a row", *sets, g.lowFor)
	}
	g.observe(0.3)
	if len(*sets) != 1 || (*sets)[0] != 1 || g.procs != 1 {
		t.Fatalf("after %d low windows in a row: switches %v, procs %d; want one switch to 1", g.lowFor, *sets, g.procs)
	}
	for range 10 { // stays at one while nearly idle
		g.observe(0.2)
	}
	if len(*sets) != 1 {
		t.Fatalf("switched again while idle: %v", *sets)
	}
}

func TestGovernorAllProcessorsOnceOneIsBusy(t *testing.T) {
	g, sets := governed()
	for range g.lowFor {
		g.observe(0.1)
	}
	g.observe(0.6) // between low and high: one processor copes
	if g.procs != 1 {
		t.Fatalf("left one processor at %.1f CPU (high %.2f)", 0.6, g.high)
	}
	g.observe(0.98) // a backlog: one processor is saturated
	if g.procs != 4 || (*sets)[len(*sets)-1] != 4 {
		t.Fatalf("at 0.98 CPU on one processor: procs %d, switches %v; want all 4 back", g.procs, *sets)
	}
	g.observe(0.5) // still above low at 4: no flapping back
	g.observe(0.5)
	g.observe(0.5)
	if g.procs != 4 {
		t.Fatalf("went back to one processor at 0.5 CPU (low %.1f)", g.low)
	}
}

func TestGovernorRunMeasuresAndRestores(t *testing.T) {
	var mu sync.Mutex
	var cpu time.Duration
	var sets []int
	g := New(2, nil)
	g.interval = 5 * time.Millisecond
	g.cpu = func() time.Duration { mu.Lock(); defer mu.Unlock(); return cpu }
	g.set = func(n int) { mu.Lock(); defer mu.Unlock(); sets = append(sets, n) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	switched := func(want int) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sets) > 0 && sets[len(sets)-1] == want
	}
	for deadline := time.Now().Add(5 * time.Second); !switched(1); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an idle process was not switched to one processor")
		}
	}
	// A busy process: 10 ms of CPU every millisecond of wall time.
	for deadline := time.Now().Add(5 * time.Second); !switched(2); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a busy process was not given its processors back")
		}
		mu.Lock()
		cpu += 10 * time.Millisecond
		mu.Unlock()
	}
	for deadline := time.Now().Add(5 * time.Second); !switched(1); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("an idle process was not switched to one processor again")
		}
	}
	cancel()
	<-done
	if !switched(2) {
		t.Fatalf("Run ended at one processor: switches %v", sets)
	}
}

func TestSetProcsAppliesAndRestoresTheDefault(t *testing.T) {
	def := runtime.GOMAXPROCS(0)
	set := setProcs(def)
	set(1)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS %d after set(1)", got)
	}
	set(def)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("GOMAXPROCS %d after restoring, want the default %d", got, def)
	}
}

func TestProcessCPUGrows(t *testing.T) {
	before := processCPU()
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		x++
	}
	if after := processCPU(); after <= before {
		t.Fatalf("process CPU %v then %v after a 50 ms busy loop (%d)", before, after, x)
	}
}
