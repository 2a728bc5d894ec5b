package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Each variable set writes its file, in its format, once profiling stops:
// the benchmarks' A/B runs read them (docs/benchmarks.md).
func TestProfileWritesWhatItsVariablesName(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"FERRY_CPUPROFILE": filepath.Join(dir, "cpu.pprof"),
		"FERRY_TRACE":      filepath.Join(dir, "exec.trace"),
		"FERRY_MEMPROFILE": filepath.Join(dir, "allocs.pprof"),
	}
	for k, v := range files {
		t.Setenv(k, v)
	}
	stop := profile()
	work := make([][]byte, 0, 1000)
	for i := range 1000 {
		work = append(work, bytes.Repeat([]byte{byte(i)}, 1024))
	}
	_ = work
	stop()
	gzipMagic := []byte{0x1f, 0x8b} // pprof's protobuf is gzipped
	for k, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		switch {
		case k == "FERRY_TRACE" && !bytes.HasPrefix(b, []byte("go 1.")):
			t.Errorf("%s: %d bytes, not an execution trace (starts %q)", k, len(b), b[:min(len(b), 8)])
		case k != "FERRY_TRACE" && !bytes.HasPrefix(b, gzipMagic):
			t.Errorf("%s: %d bytes, not a pprof profile", k, len(b))
		}
	}
}

// Without the variables nothing is written, not even in the working
// directory, and stop is harmless.
func TestProfileIsOffByDefault(t *testing.T) {
	for _, k := range []string{"FERRY_CPUPROFILE", "FERRY_TRACE", "FERRY_MEMPROFILE"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	profile()()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("profiling off wrote %v (%v)", entries, err)
	}
}
