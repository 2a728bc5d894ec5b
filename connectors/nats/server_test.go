package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
)

// natsServerBin is the nats-server scripts/test.sh installs.
const natsServerBin = "/usr/sbin/nats-server"

// startServer runs a nats-server with JetStream on a free loopback port,
// its store in a temporary directory, with extra flags (authentication),
// and stops it when the test ends. It returns the client URL.
func startServer(t *testing.T, flags ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = natsServerBin
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nats-server is required for these tests (apt-get install -y nats-server; scripts/test.sh installs it): %v", err)
	}
	dir := t.TempDir()
	args := append([]string{"-js", "-a", "127.0.0.1", "-p", "-1", "-sd", filepath.Join(dir, "store"), "--ports_file_dir", dir}, flags...)
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile // files: no copying goroutine for goleak to see
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("nats-server log:\n%s", b)
		}
	})
	ports := filepath.Join(dir, fmt.Sprintf("nats-server_%d.ports", cmd.Process.Pid))
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case err := <-exited:
			t.Fatalf("nats-server exited at start: %v", err)
		default:
		}
		if b, err := os.ReadFile(ports); err == nil {
			var p struct {
				Nats []string `json:"nats"`
			}
			if json.Unmarshal(b, &p) == nil && len(p.Nats) > 0 {
				return p.Nats[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server wrote no ports file within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect is the test's own client, with the server's authentication.
func connect(t *testing.T, url string, opts ...natsgo.Option) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
