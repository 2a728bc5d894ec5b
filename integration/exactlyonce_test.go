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

	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
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
	waitReadCommitted(t, addr, len(want))
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

// waitReadCommitted waits until a read_committed consumer of addr's topic
// changes sees at least want events.
func waitReadCommitted(t *testing.T, addr string, want int) {
	t.Helper()
	var seen int
	deadline := time.Now().Add(90 * time.Second)
	for seen = len(readCommittedEvents(t, addr, "changes")); seen < want; seen = len(readCommittedEvents(t, addr, "changes")) {
		if time.Now().After(deadline) {
			// Ends against stable ends tells a transaction left open (the
			// last stable offset stuck) from records never written.
			n := kafkatest.Partitions(t, []string{addr}, "changes")
			t.Fatalf("after 90s a read_committed consumer sees %d events of %d committed changes; partitions' ends %v, last stable offsets %v",
				seen, want, kafkatest.Ends(t, []string{addr}, "changes", n), kafkatest.StableEnds(t, []string{addr}, "changes", n))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExactlyOnceThroughBrokerRestart kills the broker process with
// SIGKILL and starts it again on the same port and data directory, again
// and again, between bursts of random writes, each kill once ferry has
// committed the burst; ferry must carry on by itself (no transaction is
// open then), and a read_committed consumer must see every committed
// change exactly once, in per-key commit order.
//
// The kills are not made mid-commit because kfake's commit is not atomic
// across a crash, unlike a real broker's (kfake's txns.go, persist.go):
// it writes a commit's markers partition by partition, in map order, with
// no PrepareCommit record before them, and on restart treats a partition
// without its marker as aborted; a real coordinator logs PrepareCommit
// first and completes the commit on every partition after a crash. Killed
// mid-load, kfake came back with the checkpoint partition committed and an
// events partition aborted (1,237 changes missing, ferry rightly resuming
// after the committed position) or the other way round (2 duplicates
// after ferry's retry). It also aborts a transaction open at the crash
// without writing abort markers and bumps its producer's epoch (ferry then
// stops as fenced: a real coordinator keeps the transaction open until
// its timeout), and a later crash's replay matches records to markers by
// producer id alone, so those aborted records come back as committed when
// the producer's next transaction commits (46 duplicates seen).
func TestExactlyOnceThroughBrokerRestart(t *testing.T) {
	l := startEOSLoad(t, "x")
	k := startKafka(t, "changes", 4)
	p := startFerry(t, exactlyOnceConfig(t, l.name, l.start, k.addr))
	burst := func() {
		l.write(t)
		time.Sleep(time.Duration(300+l.rng.IntN(1200)) * time.Millisecond)
		l.stop()
	}
	restarts := 4
	for i := range restarts {
		burst()
		waitReadCommitted(t, k.addr, len(l.w.committed()))
		down := time.Duration(l.rng.IntN(2000)) * time.Millisecond
		k.restart(t, down)
		t.Logf("broker restart %d (down %v) after %d committed changes", i+1, down, len(l.w.committed()))
		if !p.running() {
			t.Fatalf("ferry exited after broker restart %d:\n%s", i+1, tailLines(p.stderr.String(), 30))
		}
	}
	l.write(t) // the last burst is delivered after the last restart
	time.Sleep(time.Duration(300+l.rng.IntN(1200)) * time.Millisecond)
	events := l.checkExactlyOnce(t, k.addr, func() {
		if code := p.stop(); code != 0 {
			t.Fatalf("ferry exit code %d:\n%s", code, tailLines(p.stderr.String(), 30))
		}
	})
	if log := p.stderr.String(); strings.Contains(log, "kafka sink fenced") {
		t.Errorf("ferry took a broker restart for fencing:\n%s", grepLines(log, "kafka sink fenced"))
	}
	t.Logf("%d events read_committed through %d broker restarts", len(events), restarts)
}
