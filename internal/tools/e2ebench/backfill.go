package main

import (
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// backfill times `ferry backfill` of the loaded table, run without a
// running ferry (it performs the backfill itself), its peak RSS and its CPU
// time (user + system, from the exited process) per row. env carries
// FERRY_CPUPROFILE when -cpuprofile is set.
func backfill(ferry, cfg string, env []string, o options, round, binary int, logf func(string, ...any)) error {
	cmd := exec.Command(ferry, "backfill", "-c", cfg, "--source", "db", "--table", "bench.orders", "--log-level", "warn")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("ferry backfill: %v\n%s", err, stderr.String())
			}
			waiting = false
		case <-tick.C:
			peak = max(peak, rssKB(cmd.Process.Pid))
		}
	}
	el := time.Since(t0)
	if !strings.Contains(stderr.String(), fmt.Sprintf("done: %d rows", o.rows)) {
		return fmt.Errorf("ferry backfill did not report %d rows:\n%s", o.rows, stderr.String())
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	logf("backfilled %d rows to %s in %v", o.rows, o.sink, el.Round(time.Millisecond))
	fmt.Printf("ferry backfill -> %s: %.0f rows/s, %.2f CPU-us/row, peak RSS %d MB [%s]\n", o.sinkName(),
		float64(o.rows)/el.Seconds(), float64(cpu.Microseconds())/float64(o.rows), peak/1024, o.conditions(round, binary))
	return nil
}
