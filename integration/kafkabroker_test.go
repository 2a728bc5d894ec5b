package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	ossignal "os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfakeEnv, when set, makes the integration test binary serve a kfake
// broker instead of running tests (see serveKafka): a broker in a process
// of its own, which a test can kill -9 like a real one.
const kfakeEnv = "FERRY_IT_KFAKE"

// kafkaSpec is what a broker process serves: its port, its data directory
// (topics, records, group offsets and static members survive a restart),
// and the topics seeded on first start.
type kafkaSpec struct {
	Port   int              `json:"port"`
	Dir    string           `json:"dir"`
	Topics map[string]int32 `json:"topics"`
}

// serveKafka runs one kfake broker for the spec in env until the process
// is killed or stopped (SIGTERM); the parent sets Pdeathsig, so it dies
// with the test binary that started it.
func serveKafka(spec string) int {
	var s kafkaSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "kfake spec:", err)
		return 2
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(s.Port), kfake.DataDir(s.Dir)}
	for topic, n := range s.Topics {
		opts = append(opts, kfake.SeedTopics(n, topic))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		return 1
	}
	defer c.Close()
	fmt.Printf("ready %s\n", c.ListenAddrs()[0])
	stop := make(chan os.Signal, 1)
	ossignal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return 0
}

// kafkaBroker is a kfake broker in a child process on a fixed port and data
// directory: restart kills it with SIGKILL and starts it again, as a
// broker crash would.
type kafkaBroker struct {
	spec kafkaSpec
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startKafka starts a broker process seeding topic with partitions.
func startKafka(t *testing.T, topic string, partitions int) *kafkaBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	k := &kafkaBroker{spec: kafkaSpec{Port: port, Dir: t.TempDir(), Topics: map[string]int32{topic: int32(partitions)}}}
	k.mu.Lock()
	err = k.launch()
	k.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.kill()
	})
	return k
}

// launch starts the process and waits for its ready line; k.mu is held.
func (k *kafkaBroker) launch() error {
	spec, _ := json.Marshal(k.spec)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), kfakeEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start kfake process: %w", err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case line := <-ready:
		addr, ok := strings.CutPrefix(line, "ready ")
		if !ok {
			<-done
			return fmt.Errorf("kfake process said %q", line)
		}
		if k.addr == "" {
			k.addr = addr // the port is fixed: restarts keep it, and tests read addr unlocked
		}
		k.cmd, k.done = cmd, done
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("kfake process not ready within 30s")
	}
}

// kill sends SIGKILL and reaps the process; k.mu is held.
func (k *kafkaBroker) kill() {
	if k.cmd == nil {
		return
	}
	_ = k.cmd.Process.Kill()
	<-k.done
	k.cmd = nil
}

// restart kills the broker with SIGKILL, leaves it down for down, and
// starts it again on the same port and data directory.
func (k *kafkaBroker) restart(t *testing.T, down time.Duration) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kill()
	time.Sleep(down)
	var err error
	for range 40 { // the port may linger briefly
		if err = k.launch(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("restart kfake: %v", err)
}
