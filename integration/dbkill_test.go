package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestDatabaseKilledAtRandomInstants crashes MariaDB (SIGKILL) at random
// instants while Ferry connects and takes its initial snapshot, while it
// reconnects, and while it shuts down, with one replica and with an HA
// pair whose lock lives on that server. Every Ferry process must either
// recover or exit cleanly (exit 0 on SIGTERM, 1 on a runtime error, then it
// is started again as an orchestrator would); none may panic. Afterwards
// every key ends at its final row and no update is lost.
func TestDatabaseKilledAtRandomInstants(t *testing.T) {
	for _, tc := range []struct {
		name string
		ha   bool
	}{{"single", false}, {"ha", true}} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			h := newKillHarness(t, rand.New(rand.NewPCG(seed, 1)), tc.ha)
			h.run()
		})
	}
}

// killHarness is one database with table kv, a receiver, and one or two
// Ferry replicas on it.
type killHarness struct {
	t        *testing.T
	rng      *rand.Rand
	srv      *mariadbtest.Server
	pair     *fencePair // db, receiver, table checks
	cfgs     []string
	procs    []*ferryProc
	exited   []string // every exited process's log, checked for panics
	gate     sync.Mutex
	updates  atomic.Int64
	stopLoad func()
}

func newKillHarness(t *testing.T, rng *rand.Rand, ha bool) *killHarness {
	srv := mariadbtest.StartT(t, mariadbtest.Options{})
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	const keys = 50
	exec1(t, db, "CREATE TABLE kv (k INT PRIMARY KEY, n INT NOT NULL)",
		fmt.Sprintf("INSERT INTO kv SELECT seq, 0 FROM seq_1_to_%d", keys))
	r := receiver.New()
	url := receiver.Start(t, r)
	h := &killHarness{t: t, rng: rng, srv: srv, pair: &fencePair{server: srv, db: db, r: r, keys: keys}}
	serverID := nextServerID()
	replicas := 1
	c := pipelineConfig{server: srv, db: name, start: start, url: url, mode: "batch", serverID: serverID,
		extra: "    snapshot: initial\n    snapshot_chunk: 5\n"}
	if ha {
		replicas = 2
		c.state = fmt.Sprintf("  checkpoints: {type: mysql, database: %s}\n", name)
		c.top = "ha:\n  lease: mysql\n  renew_interval: 500ms\n"
	}
	for range replicas {
		h.cfgs = append(h.cfgs, c.yaml(t, t.TempDir()))
	}
	return h
}

func (h *killHarness) run() {
	t := h.t
	h.startLoad()
	// connect and initial snapshot (with snapshot_chunk 5, 50 rows take 10
	// chunks, each its own transaction).
	h.startAll()
	h.sleep(0, 800*time.Millisecond)
	h.crash(randDur(h.rng, 1500*time.Millisecond))
	h.reviveExited()
	h.waitDelivering()

	// reconnect: crash, then crash again during the reconnect back-off
	h.crash(randDur(h.rng, 2*time.Second))
	h.sleep(0, 1500*time.Millisecond)
	h.crash(randDur(h.rng, 1500*time.Millisecond))
	h.reviveExited()
	h.waitDelivering()

	// shutdown: SIGTERM while the database is down (reconnecting)
	h.gate.Lock()
	if err := h.srv.Kill(); err != nil {
		t.Fatal(err)
	}
	h.sleep(200*time.Millisecond, 2*time.Second)
	for i, p := range h.procs {
		if code := p.stop(); code != 0 {
			t.Errorf("replica %d: exit %d on SIGTERM while the database was down:\n%s", i, code, tailLines(p.stderr.String(), 20))
		}
		h.exited = append(h.exited, p.stderr.String())
	}
	h.restartDB()
	h.gate.Unlock()
	h.startAll()
	h.waitDelivering()
	h.stopLoad()

	arr := h.pair.checkConverged(t)
	t.Logf("%d updates committed, %d events received", h.updates.Load(), len(arr))
	for _, p := range h.procs {
		h.exited = append(h.exited, p.stderr.String())
	}
	for i, out := range h.exited {
		if strings.Contains(out, "panic:") {
			t.Errorf("process %d panicked:\n%s", i, tailLines(out[strings.Index(out, "panic:"):], 40))
		}
	}
}

// startLoad increments random keys until the test ends, pausing while the
// database is down; a statement cut by a crash may or may not have
// committed, which is fine: the table says which.
func (h *killHarness) startLoad() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	seed := h.rng.Uint64()
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 2))
		for ctx.Err() == nil {
			h.gate.Lock()
			_, err := h.pair.db.Exec("UPDATE kv SET n = n + 1 WHERE k = ?", 1+rng.IntN(h.pair.keys))
			h.gate.Unlock()
			if err == nil {
				h.updates.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	var once sync.Once
	h.stopLoad = func() { once.Do(func() { cancel(); wg.Wait() }) }
	h.t.Cleanup(h.stopLoad)
}

func (h *killHarness) startAll() {
	h.procs = h.procs[:0]
	for _, cfg := range h.cfgs {
		h.procs = append(h.procs, startFerry(h.t, cfg))
	}
}

// crash kills the database between two updates and starts it again after
// down.
func (h *killHarness) crash(down time.Duration) {
	h.gate.Lock()
	defer h.gate.Unlock()
	if err := h.srv.Kill(); err != nil {
		h.t.Fatal(err)
	}
	time.Sleep(down)
	h.restartDB()
}

func (h *killHarness) restartDB() {
	if err := h.srv.Restart(context.Background()); err != nil {
		h.t.Fatalf("restart MariaDB: %v", err)
	}
	resetPool(h.pair.db)
}

// resetPool drops the pool's connections, dead since the crash.
func resetPool(db *sql.DB) {
	db.SetMaxIdleConns(0)
	db.SetMaxIdleConns(2)
}

// reviveExited starts again, as an orchestrator would, every replica that
// exited; an exit must be a clean one (code 1 with a reason).
func (h *killHarness) reviveExited() {
	time.Sleep(time.Second) // let a replica that is about to give up do so
	for i, p := range h.procs {
		if p.running() {
			continue
		}
		out := p.stderr.String()
		h.exited = append(h.exited, out)
		if code := p.cmd.ProcessState.ExitCode(); code != 1 {
			h.t.Errorf("replica %d exited with %d:\n%s", i, code, tailLines(out, 20))
		}
		h.t.Logf("replica %d exited; starting it again: %s", i, lastLine(out))
		h.procs[i] = startFerry(h.t, h.cfgs[i])
	}
}

// waitDelivering waits until events arrive again.
func (h *killHarness) waitDelivering() {
	n := h.pair.r.Count()
	eventually(h.t, 90*time.Second, "deliveries after the fault", func() bool { return h.pair.r.Count() > n+20 })
}

func (h *killHarness) sleep(lo, hi time.Duration) {
	time.Sleep(lo + randDur(h.rng, hi-lo))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

// randDur is a random duration in [0, d].
func randDur(rng *rand.Rand, d time.Duration) time.Duration {
	return time.Duration(rng.Int64N(int64(d) + 1))
}
