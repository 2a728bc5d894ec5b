// Command ferry streams MySQL/MariaDB binlog changes as CloudEvents to
// HTTP, Kafka, EventBridge and stdout. See the README for usage.
package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/ferry-cdc/ferry/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	stop := profile()
	code := cli.Main(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Version: buildVersion()})
	stop()
	os.Exit(code)
}

// profile writes a CPU profile to $FERRY_CPUPROFILE, for developers
// measuring ferry under load; it does nothing when the variable is unset.
func profile() (stop func()) {
	path := os.Getenv("FERRY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil || pprof.StartCPUProfile(f) != nil {
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
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
