// Command ferry streams MySQL/MariaDB binlog changes as CloudEvents to
// HTTP, Kafka, EventBridge and stdout. See the README for usage.
package main

import (
	"context"
	"os"
	"runtime/debug"

	"github.com/ferry-cdc/ferry/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Version: buildVersion()}))
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
