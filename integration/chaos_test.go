package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// chaosPlan is how much a chaos run writes and breaks. The CI run is short;
// scripts/soak.sh sets CHAOS_SOAK=1 for the long one, and every figure can
// be overridden by its CHAOS_* variable.
type chaosPlan struct {
	changes       int // committed row changes to reach, at least
	kills         int // kill -9 of ferry
	httpOutages   int // HTTP receiver answering 503 for seconds
	flaky         int // HTTP failing 1 request in 5 and EventBridge throttling 1 call in 4, at random, for seconds
	kafkaRestarts int // kfake stopped, restarted on its DataDir
	ebFaults      int // EventBridge throttling or partial failures for seconds
	mysqlRestarts int // MariaDB killed and restarted (crash recovery)
	dropConns     int // the binlog connection killed by the server
	txPerSecond   int // writer pace; 0 = as fast as it goes
}

func chaosPlanFromEnv(t *testing.T) chaosPlan {
	p := chaosPlan{changes: 15_000, kills: 6, httpOutages: 2, flaky: 2, kafkaRestarts: 2, ebFaults: 2, mysqlRestarts: 1, dropConns: 2, txPerSecond: 150}
	if os.Getenv("CHAOS_SOAK") == "1" {
		p = chaosPlan{changes: 1_000_000, kills: 50, httpOutages: 4, flaky: 4, kafkaRestarts: 3, ebFaults: 3, mysqlRestarts: 3, dropConns: 5}
	}
	for name, field := range map[string]*int{"CHAOS_CHANGES": &p.changes, "CHAOS_KILLS": &p.kills,
		"CHAOS_HTTP_OUTAGES": &p.httpOutages, "CHAOS_FLAKY": &p.flaky, "CHAOS_KAFKA_RESTARTS": &p.kafkaRestarts, "CHAOS_EB_FAULTS": &p.ebFaults,
		"CHAOS_MYSQL_RESTARTS": &p.mysqlRestarts, "CHAOS_DROP_CONNS": &p.dropConns, "CHAOS_TX_PER_SECOND": &p.txPerSecond} {
		*field = envInt(t, name, *field)
	}
	return p
}

// faults returns the plan's faults in a random order.
func (p chaosPlan) faults(rng *rand.Rand) []string {
	var out []string
	for kind, n := range map[string]int{"kill": p.kills, "http": p.httpOutages, "flaky": p.flaky, "kafka": p.kafkaRestarts,
		"eventbridge": p.ebFaults, "mysql": p.mysqlRestarts, "dropconn": p.dropConns} {
		for range n {
			out = append(out, kind)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestChaos runs Ferry as a separate process from its own MariaDB to HTTP,
// Kafka and EventBridge while a writer commits and rolls back transactions
// (and adds a column halfway), and breaks things: kill -9 of ferry, sink
// outages, MariaDB crashes, dropped binlog connections. The verifier then
// checks every sink against what was committed: every change delivered, no
// rolled-back change, duplicates identical, per-key order (HTTP, Kafka),
// rows after the DDL decoded with the new column.
func TestChaos(t *testing.T) {
	plan := chaosPlanFromEnv(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, plan %+v", seed, plan)
	rng := rand.New(rand.NewPCG(seed, 3))

	srv := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 7})
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'padding so rows are not tiny')")
	start := binlogPos(t, srv)
	w := &chaosWriter{workload: workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}, plan: plan}

	sinks := startChaosSinks(t)
	dir := t.TempDir()
	base := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, sinks.http)}.yaml(t, dir)
	extra := filepath.Join(dir, "sinks.yaml")
	if err := os.WriteFile(extra, []byte(sinks.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &chaosHarness{t: t, rng: rng, srv: srv, writer: w, sinks: sinks, args: []string{"run", "-c", base, "-c", extra}}
	h.ferry = startFerryArgs(t, h.args...)

	writerDone := make(chan error, 1)
	ctx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	go func() { writerDone <- w.run(ctx) }()
	began := time.Now()
	faults := plan.faults(rng)
	for i, fault := range faults {
		// Spread the faults over the whole workload.
		h.waitForChanges((i+1)*plan.changes/(len(faults)+1), writerDone)
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		if !h.ferry.running() {
			t.Fatalf("ferry exited by itself before fault %d; stderr:\n%s", i+1, tailLines(h.ferry.stderr.String(), 30))
		}
		h.inject(fault)
		t.Logf("fault %d %s: %d changes committed, %d events at HTTP", i+1, fault, w.count(), sinks.http.Count())
	}
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	want := w.committed()
	if w.addedC == 0 {
		t.Fatal("the writer never added column c")
	}
	t.Logf("%d changes committed in %v (column c added after row %d); waiting for every sink", len(want), time.Since(began).Round(time.Second), w.addedC)
	sinks.verify(t, want)
	if code := h.ferry.stop(); code != 0 {
		t.Fatalf("final ferry exit code %d", code)
	}
}

// chaosWriter runs the workload at the plan's pace until the plan's change
// count, adding column c halfway; pause holds it between transactions.
type chaosWriter struct {
	workload
	plan chaosPlan
	gate sync.Mutex
}

func (w *chaosWriter) run(ctx context.Context) error {
	var tick *time.Ticker
	if w.plan.txPerSecond > 0 {
		tick = time.NewTicker(time.Second / time.Duration(w.plan.txPerSecond))
		defer tick.Stop()
	}
	for w.count() < w.plan.changes && ctx.Err() == nil {
		if tick != nil {
			<-tick.C
		}
		w.gate.Lock()
		err := w.try()
		if err == nil && w.addedC == 0 && w.count() >= w.plan.changes/2 {
			err = w.addColumn()
		}
		w.gate.Unlock()
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// chaosHarness injects the faults.
type chaosHarness struct {
	t      *testing.T
	rng    *rand.Rand
	srv    *mariadbtest.Server
	writer *chaosWriter
	sinks  *chaosSinks
	args   []string
	ferry  *ferryProc
}

func (h *chaosHarness) inject(fault string) {
	spell := time.Duration(1000+h.rng.IntN(3000)) * time.Millisecond
	switch fault {
	case "kill":
		h.ferry.kill()
		time.Sleep(time.Duration(h.rng.IntN(500)) * time.Millisecond)
		h.ferry = startFerryArgs(h.t, h.args...)
	case "http":
		h.sinks.http.SetOutage(true)
		time.Sleep(spell)
		h.sinks.http.SetOutage(false)
	case "flaky":
		// Random per-request failures, not an outage window: every
		// Write partly succeeds, so the failing keys are held back
		// while the others flow.
		h.sinks.http.FailRandomly(5, 503, h.rng.Uint64())
		h.sinks.eb.ThrottleRandomly(4, h.rng.Uint64())
		time.Sleep(2 * spell)
		h.sinks.http.FailRandomly(0, 0, 0)
		h.sinks.eb.ThrottleRandomly(0, 0)
	case "kafka":
		h.sinks.restartKafka(h.t, spell)
	case "eventbridge":
		h.sinks.ebSpell(h.rng, spell)
	case "mysql":
		h.restartMySQL(spell)
	case "dropconn":
		h.dropBinlogConnections()
	default:
		h.t.Fatalf("unknown fault %q", fault)
	}
}

// waitForChanges returns once the writer committed n changes (or ended).
func (h *chaosHarness) waitForChanges(n int, writerDone chan error) {
	for h.writer.count() < n {
		select {
		case err := <-writerDone:
			writerDone <- err // for the test to read
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// restartMySQL crashes MariaDB between two transactions of the writer (a
// commit cut by the crash would leave the test unsure what was committed)
// and starts it again on the same datadir.
func (h *chaosHarness) restartMySQL(down time.Duration) {
	h.writer.gate.Lock()
	defer h.writer.gate.Unlock()
	if err := h.srv.Kill(); err != nil {
		h.t.Fatal(err)
	}
	time.Sleep(down)
	if err := h.srv.Restart(context.Background()); err != nil {
		h.t.Fatalf("restart MariaDB: %v", err)
	}
	// The pool's connections died with the server; drop them so the
	// writer's next transaction does not start on one.
	h.writer.db.SetMaxIdleConns(0)
	h.writer.db.SetMaxIdleConns(2)
}

// dropBinlogConnections kills the server side of every binlog dump
// connection, as a proxy or a failover would.
func (h *chaosHarness) dropBinlogConnections() {
	db := h.srv.DB(h.t, "")
	rows, err := db.Query("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'")
	if err != nil {
		h.t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			h.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	_ = rows.Close()
	for _, id := range ids {
		_, _ = db.Exec(fmt.Sprintf("KILL CONNECTION %d", id)) // it may have ended meanwhile
	}
}
