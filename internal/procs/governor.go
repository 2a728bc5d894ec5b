// Package procs runs Go with one processor while ferry is nearly idle and
// with all of them under load.
//
// At a steady trickle of changes each hand-off between ferry's goroutines
// (source, transformer, sink worker, the Kafka client's) wakes an idle
// processor's thread, which spins looking for more work before it sleeps
// again: with one processor the same hand-offs are goroutine switches on
// one thread. Measured at 5,000 single-row transactions/s to Kafka on 2
// cores: 29-30 µs of CPU per change with one processor against 34-37 with
// two, the p99 latency unchanged (docs/benchmarks.md, "One processor while
// nearly idle"). A backlog needs the second processor (the binlog decode
// and the transform run in parallel), so the governor switches back as
// soon as one processor is busy.
package procs

import (
	"context"
	"log/slog"
	"runtime"
	"syscall"
	"time"
)

// Defaults of a Governor.
const (
	// DefaultInterval is how often the process's CPU use is measured.
	DefaultInterval = time.Second
	// DefaultLow is the CPU use (in CPUs) below which the process is
	// nearly idle; DefaultLowFor windows in a row switch it to one
	// processor.
	DefaultLow    = 0.4
	DefaultLowFor = 3
	// DefaultHigh is the CPU use with one processor from which the process
	// gets all of them back: one processor is then mostly busy.
	DefaultHigh = 0.75
)

// Governor sets GOMAXPROCS from the process's CPU use. The zero value is
// not usable: build one with New.
type Governor struct {
	max      int // processors under load
	interval time.Duration
	low      float64
	lowFor   int
	high     float64
	log      *slog.Logger
	cpu      func() time.Duration // the process's CPU time so far
	set      func(n int)          // applies GOMAXPROCS n

	procs   int // processors now
	lowSeen int // consecutive windows below low at max processors
}

// New returns a governor for a process that runs with max processors
// under load (the GOMAXPROCS in effect when it starts).
func New(max int, log *slog.Logger) *Governor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Governor{max: max, interval: DefaultInterval, low: DefaultLow, lowFor: DefaultLowFor, high: DefaultHigh,
		log: log, cpu: processCPU, set: setProcs(max), procs: max}
}

// Enabled reports whether ferry's run should govern its processors: not
// when GOMAXPROCS is set in the environment (the user chose) or is 1
// already (a CPU limit below one CPU, or one CPU).
func Enabled(getenv func(string) string) bool {
	return getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > 1
}

// Run measures the CPU use every interval and adjusts GOMAXPROCS until ctx
// ends; it then restores the processors it started with.
func (g *Governor) Run(ctx context.Context) {
	t := time.NewTicker(g.interval)
	defer t.Stop()
	last, at := g.cpu(), time.Now()
	for {
		select {
		case <-ctx.Done():
			if g.procs != g.max {
				g.set(g.max)
			}
			return
		case now := <-t.C:
			used := g.cpu()
			if wall := now.Sub(at); wall > 0 {
				g.observe(float64(used-last) / float64(wall))
			}
			last, at = used, now
		}
	}
}

// observe takes one window's CPU use (in CPUs) and switches the
// processors when it says so.
func (g *Governor) observe(cpus float64) {
	switch {
	case g.procs == 1 && cpus >= g.high:
		g.switchTo(g.max, cpus)
	case g.procs == g.max && cpus < g.low:
		if g.lowSeen++; g.lowSeen >= g.lowFor {
			g.switchTo(1, cpus)
		}
	default:
		g.lowSeen = 0
	}
}

func (g *Governor) switchTo(n int, cpus float64) {
	g.log.Debug("go processors", "from", g.procs, "to", n, "cpu_use", cpus)
	g.set(n)
	g.procs, g.lowSeen = n, 0
}

// setProcs applies GOMAXPROCS n; max restores the runtime's default, which
// then follows a changing cgroup CPU limit again.
func setProcs(max int) func(int) {
	return func(n int) {
		if n == max {
			runtime.SetDefaultGOMAXPROCS()
			return
		}
		runtime.GOMAXPROCS(n)
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
