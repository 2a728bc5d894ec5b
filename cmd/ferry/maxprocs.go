package main

import (
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// singleProcUnderCPULimit runs Go with one P when the process's cgroup
// allows it less than one CPU and GOMAXPROCS is not set. Go's default
// there is two Ps (it never goes below two for a cgroup limit), and at a
// steady trickle of changes each hand-off between ferry's goroutines then
// wakes the second P's thread, which spins looking for work before
// sleeping again: measured at 3,000 single-row transactions/s, one P used
// 13-18 % less CPU per change (docs/benchmarks.md, "Steady rate
// (steady)"). Under such a limit two Ps cannot run in parallel for long
// anyway: they spend the quota twice as fast and are throttled. It reports
// whether it changed GOMAXPROCS.
func singleProcUnderCPULimit() bool {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) == 1 {
		return false
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	if limit, ok := cgroupCPULimit("/sys/fs/cgroup", string(self), readFile); ok && limit < 1 {
		runtime.GOMAXPROCS(1)
		return true
	}
	return false
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

// cgroupCPULimit is the smallest CPU limit (quota / period, in CPUs) of
// the cgroup named in self (/proc/self/cgroup) and its ancestors, under
// root: cgroup v2's cpu.max, else v1's cpu.cfs_quota_us and
// cpu.cfs_period_us. ok is false when no limit is set.
func cgroupCPULimit(root, self string, read func(string) (string, error)) (limit float64, ok bool) {
	for _, line := range strings.Split(strings.TrimSpace(self), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir string
		switch {
		case f[0] == "0" && f[1] == "":
			dir = root
		case hasController(f[1], "cpu"):
			dir = path.Join(root, f[1])
		default:
			continue
		}
		for p := f[2]; ; p = path.Dir(p) {
			if l, found := cpuMax(path.Join(dir, p), read); found && (!ok || l < limit) {
				limit, ok = l, true
			}
			if p == "/" || p == "." || p == "" {
				break
			}
		}
	}
	return limit, ok
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// cpuMax reads the limit set on one cgroup directory, v2 or v1.
func cpuMax(dir string, read func(string) (string, error)) (float64, bool) {
	if s, err := read(path.Join(dir, "cpu.max")); err == nil {
		f := strings.Fields(s)
		if len(f) == 2 && f[0] != "max" {
			return ratio(f[0], f[1])
		}
		return 0, false
	}
	q, err1 := read(path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := read(path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ratio(strings.TrimSpace(q), strings.TrimSpace(p))
}

func ratio(quota, period string) (float64, bool) {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false // v1 writes -1 for no limit
	}
	return q / p, true
}
