package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// exactlyOnceConfig streams db's tables to a Kafka sink with delivery:
// exactly_once, its source's only sink.
func exactlyOnceConfig(t *testing.T, db, start, brokers string) string {
	return eosConfig{db: db, start: start, brokers: brokers}.yaml(t)
}

// eosConfig is exactlyOnceConfig with what an HA replica sets too.
type eosConfig struct {
	db, start, brokers string
	serverID           uint32 // default: a new one
	admin              string // admin.listen; default off
	state              string // appended to the state block
	top                string // more top-level blocks (ha)
}

func (c eosConfig) yaml(t *testing.T) string {
	dir := t.TempDir()
	if c.serverID == 0 {
		c.serverID = nextServerID()
	}
	if c.admin == "" {
		c.admin = `"off"`
	}
	return writeConfig(t, dir, fmt.Sprintf(`state:
  dir: %s/state
  checkpoint_interval: 50ms
%s%sadmin:
  listen: %s
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
`, dir, c.state, c.top, c.admin, shared.Addr, c.serverID, c.db, c.start, c.brokers))
}

// TestExactlyOnceToKafkaThroughKill9 kills ferry with SIGKILL again and
// again while rows are written; a read_committed consumer must then see
// every committed change exactly once, in per-key commit order, and the
// table rebuilt from the events must equal the table. kcat, reading with
// isolation.level=read_committed, must count the same records.
func TestExactlyOnceToKafkaThroughKill9(t *testing.T) {
	l := startEOSLoad(t, "some padding to make rows less tiny")
	k := startKafka(t, "changes", 4)
	cfg := exactlyOnceConfig(t, l.name, l.start, k.addr)
	l.write(t)
	kills := 8
	for i := range kills {
		p := startFerry(t, cfg)
		time.Sleep(time.Duration(400+l.rng.IntN(1200)) * time.Millisecond)
		p.kill()
		t.Logf("kill %d: %d committed changes so far", i+1, len(l.w.committed()))
	}
	l.stop()
	p := startFerry(t, cfg)
	events := l.checkExactlyOnce(t, k.addr, func() {
		if code := p.stop(); code != 0 {
			t.Fatalf("final ferry exit code %d", code)
		}
	})
	if n := kcatCount(t, k.addr, "changes"); n >= 0 && n != len(events) {
		t.Errorf("kcat read_committed counted %d records, franz-go %d", n, len(events))
	}
	t.Logf("%d events read_committed after %d kills", len(events), kills)
}

// eosLoad is a random workload on table t of a fresh database (seeded,
// the seed logged), written from a goroutine between write and stop.
type eosLoad struct {
	name, start string // the database and the binlog position before it
	db          *sql.DB
	w           *workload
	rng         *rand.Rand // the test's own random choices
	stop        func()     // stops the writer and waits for it; idempotent
}

// startEOSLoad creates the database and table t, whose pad column
// defaults to pad.
func startEOSLoad(t *testing.T, pad string) *eosLoad {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, fmt.Sprintf("CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT '%s')", pad))
	return &eosLoad{name: name, start: start, db: db, w: &workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}},
		rng: rand.New(rand.NewPCG(seed, 2)), stop: func() {}}
}

// write starts the writer; it is stopped before the database is dropped.
func (l *eosLoad) write(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			l.w.step(t)
		}
	})
	var once sync.Once
	l.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(l.stop)
}

// checkExactlyOnce stops the writer, waits until a read_committed consumer
// of addr's topic changes reads as many events as changes were committed,
// runs finish (which stops the ferries), and reads again: every committed
// change exactly once, each key's in commit order, and the table rebuilt
// from the events equal to the table.
func (l *eosLoad) checkExactlyOnce(t *testing.T, addr string, finish func()) []event.Event {
	t.Helper()
	l.stop()
	want := l.w.committed()
	eventually(t, 90*time.Second, fmt.Sprintf("%d events read_committed", len(want)), func() bool {
		return len(readCommittedEvents(t, addr, "changes")) >= len(want)
	})
	finish()
	events := readCommittedEvents(t, addr, "changes")
	if d := distinct(events); d != len(events) {
		t.Errorf("%d events under read_committed, %d distinct: %d duplicates", len(events), d, len(events)-d)
	}
	verifyAgainstWorkload(t, events, want)
	verifyRebuiltTable(t, events, l.db)
	t.Logf("%d committed changes", len(want))
	return events
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
	l := startEOSLoad(t, "x")
	k := startKafka(t, "changes", 4)
	// Two instances: own state directories and server ids, one sink name.
	older := startFerry(t, exactlyOnceConfig(t, l.name, l.start, k.addr))
	l.write(t)
	eventually(t, 60*time.Second, "the first instance delivers", func() bool {
		return someCommitted(t, k.addr, "changes")
	})
	newer := startFerry(t, exactlyOnceConfig(t, l.name, l.start, k.addr))
	eventually(t, 60*time.Second, "the older instance stops", func() bool { return !older.running() })
	l.stop()
	if code := older.wait(time.Second); code == 0 {
		t.Errorf("the fenced instance exited with 0")
	}
	if log := older.stderr.String(); !strings.Contains(log, "kafka sink fenced") {
		t.Errorf("the fenced instance did not say it was fenced:\n%s", log)
	}
	l.checkExactlyOnce(t, k.addr, func() {
		if code := newer.stop(); code != 0 {
			t.Fatalf("newer ferry exit code %d", code)
		}
	})
}

// TestExactlyOnceThroughBrokerRestart kills the broker process with
// SIGKILL again and again while ferry streams under load, and starts it
// again on the same port and data directory; a read_committed consumer
// must see every committed change exactly once, in per-key commit order.
//
// Where kfake differs from a real broker (kfake's persist.go, txns.go):
// it keeps no transaction log. On restart it aborts every transaction
// that was open when it died and bumps the epoch of its producer, where a
// real coordinator keeps the transaction open until its timeout and the
// producer carries on. Ferry's next request with the old epoch then gets
// INVALID_PRODUCER_EPOCH / PRODUCER_FENCED, which is what a producer
// fenced by another instance gets too, so ferry stops as fenced (one
// line, a non-zero exit): the test accepts that outcome only, and starts
// ferry again as an orchestrator would. When no transaction was open at
// the kill, ferry must carry on by itself. kfake also writes a commit's
// markers partition by partition with no PrepareCommit record before
// them, so a kill between two markers would leave that transaction
// committed on some partitions and aborted on the others after the
// restart (a real coordinator completes the commit everywhere); that
// window is one in-memory loop, which a random kill practically never
// hits, and this test cannot check a broker's atomicity, only ferry's
// side: no committed change lost or doubled across broker crashes.
func TestExactlyOnceThroughBrokerRestart(t *testing.T) {
	l := startEOSLoad(t, "x")
	k := startKafka(t, "changes", 4)
	cfg := exactlyOnceConfig(t, l.name, l.start, k.addr)
	p := startFerry(t, cfg)
	l.write(t)
	restarts, carriedOn := 4, 0
	for i := range restarts {
		eventually(t, 60*time.Second, "ferry commits", func() bool { return someCommitted(t, k.addr, "changes") })
		time.Sleep(time.Duration(300+l.rng.IntN(1200)) * time.Millisecond)
		down := time.Duration(l.rng.IntN(2000)) * time.Millisecond
		k.restart(t, down)
		from := stableEnd(t, k.addr, "changes")
		eventually(t, 60*time.Second, "ferry commits after the restart or stops as fenced", func() bool {
			return !p.running() || stableEnd(t, k.addr, "changes") > from
		})
		if p.running() {
			carriedOn++
			t.Logf("broker restart %d (down %v): ferry carried on; %d committed changes so far", i+1, down, len(l.w.committed()))
			continue
		}
		log := p.stderr.String()
		if code := p.wait(time.Second); code == 0 || !strings.Contains(log, "kafka sink fenced") || strings.Contains(log, "panic:") {
			t.Fatalf("ferry exited (code %d) after broker restart %d, not as fenced by kfake's epoch bump:\n%s", code, i+1, tailLines(log, 30))
		}
		t.Logf("broker restart %d (down %v): a transaction was open, kfake bumped the epoch, ferry stopped as fenced: %s",
			i+1, down, grepLines(log, "msg=\"kafka sink fenced"))
		p = startFerry(t, cfg)
	}
	events := l.checkExactlyOnce(t, k.addr, func() {
		if code := p.stop(); code != 0 {
			t.Fatalf("ferry exit code %d:\n%s", code, tailLines(p.stderr.String(), 30))
		}
	})
	t.Logf("%d events read_committed after %d broker restarts (ferry carried on through %d)", len(events), restarts, carriedOn)
}
