package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

var (
	ferryBin string              // the binary under test
	shared   *mariadbtest.Server // one binlog server for tests that do not restart it
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if spec := os.Getenv(kfakeEnv); spec != "" {
		return serveKafka(spec) // this process is a broker for a test (kafkabroker_test.go)
	}
	dir, err := os.MkdirTemp("", "ferry-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ferryBin = filepath.Join(dir, "ferry")
	args := []string{"build", "-o", ferryBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/ferry")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build ferry:", err)
		return 1
	}
	shared, err = mariadbtest.Start(context.Background(), mariadbtest.Options{BaseDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: integration tests need a throwaway MariaDB:", err)
		return 1
	}
	defer shared.Stop()
	return m.Run()
}
