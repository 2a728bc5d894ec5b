package integration

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// exactlyOnceConfig streams db's tables to a Kafka sink with delivery:
// exactly_once, its source's only sink.
func exactlyOnceConfig(t *testing.T, db, start, brokers string) string {
	dir := t.TempDir()
	return writeConfig(t, dir, fmt.Sprintf(`state:
  dir: %s/state
  checkpoint_interval: 50ms
admin:
  listen: "off"
pipeline:
  shutdown_timeout: 10s
defaults:
  type_prefix: com.example
  to: [bus]
sources:
  db:
    type: mysql
    addr: %s
    user: root
    server_id: %d
    include: ["%s.*"]
    start: %s
    startup_timeout: 5s
sinks:
  bus:
    type: kafka
    brokers: [%s]
    topic: changes
    mode: structured
    delivery: exactly_once
    timeout: 5s
    retry: {initial_backoff: 50ms, max_backoff: 1s}
`, dir, shared.Addr, nextServerID(), db, start, brokers))
}

// TestExactlyOnceToKafkaThroughKill9 kills ferry with SIGKILL again and
// again while rows are written; a read_committed consumer must then see
// every committed change exactly once, in per-key commit order, and the
// table rebuilt from the events must equal the table. kcat, reading with
// isolation.level=read_committed, must count the same records.
func TestExactlyOnceToKafkaThroughKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'some padding to make rows less tiny')")
	w := &workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}
	k := startKafka(t, "changes", 4)
	cfg := exactlyOnceConfig(t, name, start, k.addr)

	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			w.step(t)
		}
	})
	kills := 8
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range kills {
		p := startFerry(t, cfg)
		time.Sleep(time.Duration(400+rng.IntN(1200)) * time.Millisecond)
		p.kill()
		t.Logf("kill %d: %d committed changes so far", i+1, len(w.committed()))
	}
	stopWriter()
	wg.Wait()

	want := w.committed()
	p := startFerry(t, cfg)
	var events []event.Event
	eventually(t, 90*time.Second, fmt.Sprintf("%d events read_committed", len(want)), func() bool {
		events = readCommittedEvents(t, k.addr, "changes")
		return len(events) >= len(want)
	})
	if code := p.stop(); code != 0 {
		t.Fatalf("final ferry exit code %d", code)
	}
	events = readCommittedEvents(t, k.addr, "changes")
	if d := distinct(events); d != len(events) {
		t.Errorf("%d events under read_committed, %d distinct: %d duplicates after %d kills", len(events), d, len(events)-d, kills)
	}
	verifyAgainstWorkload(t, events, want)
	verifyRebuiltTable(t, events, db)
	if n := kcatCount(t, k.addr, "changes"); n >= 0 && n != len(events) {
		t.Errorf("kcat read_committed counted %d records, franz-go %d", n, len(events))
	}
	t.Logf("%d committed changes, %d events read_committed after %d kills", len(want), len(events), kills)
}

// readCommittedEvents reads topic with isolation.level=read_committed,
// partition by partition in offset order, as structured CloudEvents.
func readCommittedEvents(t *testing.T, addr, topic string) []event.Event {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []event.Event
	for empty := 0; empty < 2; {
		wait := time.Second
		if len(out) == 0 {
			wait = 5 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var e event.Event
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Errorf("record at offset %d is not a structured CloudEvent: %v", r.Offset, err)
				return
			}
			out = append(out, e)
		})
		if n == 0 {
			empty++
		} else {
			empty = 0
		}
	}
	return out
}

// verifyRebuiltTable applies the events (each key's in order) to an empty
// table and compares it with SELECT.
func verifyRebuiltTable(t *testing.T, events []event.Event, db *sql.DB) {
	t.Helper()
	rebuilt := map[int]int{}
	for _, e := range events {
		d := decode(t, e)
		switch d.Op {
		case "delete":
			delete(rebuilt, int(d.Before["id"].(float64)))
		default:
			rebuilt[int(d.After["id"].(float64))] = int(d.After["v"].(float64))
		}
	}
	rows, err := db.Query("SELECT id, v FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	table := map[int]int{}
	for rows.Next() {
		var id, v int
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		table[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rebuilt) != fmt.Sprint(table) {
		t.Errorf("table rebuilt from the events (%d rows) differs from SELECT (%d rows)", len(rebuilt), len(table))
	}
}

// kcatCount counts the records kcat reads with read_committed isolation,
// or -1 when kcat is not installed.
func kcatCount(t *testing.T, addr, topic string) int {
	t.Helper()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Log("kcat not installed: skipping its count")
		return -1
	}
	cmd := exec.Command("kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%o\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Errorf("kcat: %v: %s", err, errb.String())
		return -1
	}
	return len(strings.Fields(out.String()))
}

// TestExactlyOnceFencesTheOlderInstance starts a second ferry with the
// same Kafka sink (so the same transactional id) while the first streams:
// the first is fenced and stops with one clear line instead of taking the
// id back, and a read_committed consumer still sees every change once.
func TestExactlyOnceFencesTheOlderInstance(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'x')")
	w := &workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}
	k := startKafka(t, "changes", 4)
	// Two instances: own state directories and server ids, one sink name.
	older := startFerry(t, exactlyOnceConfig(t, name, start, k.addr))

	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			w.step(t)
		}
	})
	t.Cleanup(func() { stopWriter(); wg.Wait() }) // before the database is dropped
	eventually(t, 60*time.Second, "the first instance delivers", func() bool {
		return someCommitted(t, k.addr, "changes")
	})
	newer := startFerry(t, exactlyOnceConfig(t, name, start, k.addr))
	eventually(t, 60*time.Second, "the older instance stops", func() bool { return !older.running() })
	stopWriter()
	wg.Wait()
	if code := older.wait(time.Second); code == 0 {
		t.Errorf("the fenced instance exited with 0")
	}
	if log := older.stderr.String(); !strings.Contains(log, "kafka sink fenced") {
		t.Errorf("the fenced instance did not say it was fenced:\n%s", log)
	}
	want := w.committed()
	var events []event.Event
	eventually(t, 90*time.Second, fmt.Sprintf("%d events read_committed", len(want)), func() bool {
		events = readCommittedEvents(t, k.addr, "changes")
		return len(events) >= len(want)
	})
	if code := newer.stop(); code != 0 {
		t.Fatalf("newer ferry exit code %d", code)
	}
	events = readCommittedEvents(t, k.addr, "changes")
	if d := distinct(events); d != len(events) {
		t.Errorf("%d events under read_committed, %d distinct", len(events), d)
	}
	verifyAgainstWorkload(t, events, want)
	verifyRebuiltTable(t, events, db)
}

// someCommitted reports whether a read_committed consumer gets a record
// of topic within a few seconds (readCommittedEvents reads to the end,
// which never comes while ferry streams).
func someCommitted(t *testing.T, addr, topic string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.PollFetches(ctx).NumRecords() > 0
}
