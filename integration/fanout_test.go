package integration

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestFanOutWithOneSinkDown routes every change to HTTP, Kafka and
// EventBridge. EventBridge throttles everything for a while: HTTP and Kafka
// keep receiving; once it recovers it catches up, and nothing is lost.
func TestFanOutWithOneSinkDown(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "changes"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	eb := ebfake.New()
	ebSrv := httptest.NewServer(eb)
	defer ebSrv.Close()
	eb.ThrottleNext(1 << 30) // down
	r := receiver.New()
	dir := t.TempDir()
	base := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	extra := filepath.Join(dir, "sinks.yaml")
	_ = os.WriteFile(extra, []byte(fmt.Sprintf(`defaults: {to: [recv, bus, eb]}
sinks:
  bus: {type: kafka, brokers: [%s], topic: changes}
  eb:
    type: eventbridge
    region: us-east-1
    event_bus: changes
    endpoint: %s
    access_key_id: AKIDTEST
    secret_access_key: test-secret
    retry: {initial_backoff: 20ms, max_backoff: 200ms}
`, kc.ListenAddrs()[0], ebSrv.URL)), 0o600)
	p := startFerryArgs(t, "run", "-c", base, "-c", extra)
	for i := range 50 {
		exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", i, i))
	}
	eventually(t, 30*time.Second, "HTTP and Kafka to receive all 50 while EventBridge is down", func() bool {
		return distinct(r.Events()) == 50 && len(headerIDs(t, kc.ListenAddrs(), "changes")) == 50
	})
	if n := len(eb.Accepted()); n != 0 {
		t.Fatalf("EventBridge accepted %d while throttling everything", n)
	}
	eb.ThrottleNext(0) // back up
	eventually(t, 30*time.Second, "EventBridge to catch up", func() bool { return len(eb.Accepted()) >= 50 })
	seen := map[string]bool{}
	for _, en := range eb.Accepted() {
		seen[en.Detail] = true
	}
	if len(seen) != 50 {
		t.Fatalf("EventBridge has %d distinct events, want 50", len(seen))
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestDeadLettersListAndReplay: an event the endpoint rejects with 400 is
// dead-lettered, listed, and replayed once the endpoint accepts it.
func TestDeadLettersListAndReplay(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
	r := receiver.New()
	var mu sync.Mutex
	var rejected string // the first event seen is the poison one
	r.FailMatching(func(e event.Event) bool {
		mu.Lock()
		defer mu.Unlock()
		if rejected == "" {
			rejected = e.ID()
		}
		return e.ID() == rejected
	}, 400)
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	p := startFerry(t, cfg)
	eventually(t, 30*time.Second, "two delivered and one dead-lettered", func() bool {
		return r.Count() == 2 && strings.Contains(p.stderr.String(), "event dead-lettered")
	})
	p.stop()
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "-c", cfg)
	if code != 0 || !strings.Contains(out, "1 dead letter(s)") || !strings.Contains(out, rejected) || !strings.Contains(out, "400 Bad Request") {
		t.Fatalf("dlq list: %d\n%s%s", code, out, errOut)
	}
	replayTheDeadLetter(t, cfg, r)
}

// replayTheDeadLetter replays the one dead letter of sink recv, of three
// events: refused while r still rejects it, delivered once r takes it,
// leaving none.
func replayTheDeadLetter(t *testing.T, cfg string, r *receiver.Receiver) {
	t.Helper()
	code, _, errOut := runFerry(t, 30*time.Second, "dlq", "replay", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "not delivered") {
		t.Fatalf("replay while still rejected: %d %s", code, errOut)
	}
	r.FailMatching(nil, 0)
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "replay", "-c", cfg, "--sink", "recv")
	if code != 0 || !strings.Contains(out, "replayed 1 dead letter(s); 0 remain") {
		t.Fatalf("replay: %d %s %s", code, out, errOut)
	}
	if distinct(r.Events()) != 3 {
		t.Fatalf("receiver has %d distinct events after the replay", distinct(r.Events()))
	}
	if _, out, _ := runFerry(t, 30*time.Second, "dlq", "list", "-c", cfg); !strings.Contains(out, "0 dead letter(s)") {
		t.Fatalf("letters left after replay:\n%s", out)
	}
}

// TestDeadLettersOfARunningFerry: `ferry dlq list|replay` reach the dead
// letters of a running ferry, which holds the store, through its admin API,
// with the same output as when it is stopped.
func TestDeadLettersOfARunningFerry(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return e.Subject() == "2" }, 422)
	adminAddr := freeAddr(t)
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r), admin: adminAddr}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	defer p.stop()
	eventually(t, 30*time.Second, "two delivered and one dead-lettered", func() bool {
		return r.Count() == 2 && strings.Contains(p.stderr.String(), "event dead-lettered")
	})
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "-c", cfg)
	if code != 0 || !strings.Contains(out, "1 dead letter(s)") || !strings.Contains(out, "422 Unprocessable Entity") {
		t.Fatalf("dlq list while running: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runFerry(t, 30*time.Second, "dlq", "list", "--json", "-c", cfg)
	if code != 0 || !strings.Contains(out, `"sink":"recv"`) {
		t.Fatalf("dlq list --json while running: %d\n%s%s", code, out, errOut)
	}
	replayTheDeadLetter(t, cfg, r)
}
