// Command ferry streams MySQL/MariaDB binlog changes as CloudEvents to
// HTTP, Kafka, EventBridge and stdout. See the README for usage.
package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"

	"github.com/ferry-cdc/ferry/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	singleProcUnderCPULimit()
	stop := profile()
	code := cli.Main(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Version: buildVersion()})
	stop()
	os.Exit(code)
}

// profile writes a CPU profile to $FERRY_CPUPROFILE, an execution trace
// to $FERRY_TRACE (goroutine and thread wake-ups: go tool trace) and, at
// exit, an allocation profile to $FERRY_MEMPROFILE, for developers
// measuring ferry under load; it does nothing when the variables are unset.
func profile() (stop func()) {
	stopCPU := func() {}
	if path := os.Getenv("FERRY_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stopCPU = func() { pprof.StopCPUProfile(); f.Close() }
		}
	}
	if path := os.Getenv("FERRY_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil && trace.Start(f) == nil {
			stopProfile := stopCPU
			stopCPU = func() { stopProfile(); trace.Stop(); f.Close() }
		}
	}
	return func() {
		stopCPU()
		if path := os.Getenv("FERRY_MEMPROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}
