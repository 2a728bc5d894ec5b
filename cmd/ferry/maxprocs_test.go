package main

import (
	"errors"
	"testing"
)

func TestCgroupCPULimit(t *testing.T) {
	cases := []struct {
		name   string
		self   string
		files  map[string]string
		limit  float64
		hasLim bool
	}{
		{"v2 sidecar 250m", "0::/\n", map[string]string{"/sys/fs/cgroup/cpu.max": "25000 100000\n"}, 0.25, true},
		{"v2 no limit", "0::/\n", map[string]string{"/sys/fs/cgroup/cpu.max": "max 100000\n"}, 0, false},
		{"v2 limit on a parent", "0::/kubepods/pod1/c1\n", map[string]string{
			"/sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "max 100000", "/sys/fs/cgroup/kubepods/pod1/cpu.max": "50000 100000"}, 0.5, true},
		{"v1 cpu,cpuacct", "4:memory:/x\n2:cpu,cpuacct:/x\n", map[string]string{
			"/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us": "150000\n", "/sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us": "100000\n"}, 1.5, true},
		{"v1 unlimited", "1:cpu:/\n", map[string]string{
			"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 0, false},
		{"nothing readable", "0::/\n", nil, 0, false},
	}
	for _, c := range cases {
		read := func(p string) (string, error) {
			if s, ok := c.files[p]; ok {
				return s, nil
			}
			return "", errors.New("no such file")
		}
		limit, ok := cgroupCPULimit("/sys/fs/cgroup", c.self, read)
		if ok != c.hasLim || limit != c.limit {
			t.Errorf("%s: got %v, %v; want %v, %v", c.name, limit, ok, c.limit, c.hasLim)
		}
	}
}
