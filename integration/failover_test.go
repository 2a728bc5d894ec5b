package integration

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// replicaPair is a MariaDB primary (server_id 1) and a GTID replica of it
// (server_id 2, log_slave_updates) that can be promoted.
type replicaPair struct {
	primary, replica *mariadbtest.Server
	db               string
}

func startMariaDBPair(t *testing.T) *replicaPair {
	t.Helper()
	ctx := context.Background()
	p := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 1})
	r := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 2, ExtraArgs: mariadbtest.ReplicaArgs})
	if err := p.CreateUser(ctx, "repl", "repl-password", "REPLICATION SLAVE ON *.*"); err != nil {
		t.Fatal(err)
	}
	if err := r.ReplicateFrom(ctx, p, "repl", "repl-password"); err != nil {
		t.Fatal(err)
	}
	pair := &replicaPair{primary: p, replica: r, db: "shop"}
	if err := p.Exec(ctx, "CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY, v INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	pair.waitReplicated(t)
	return pair
}

// waitReplicated waits until the replica applied everything the primary has.
func (p *replicaPair) waitReplicated(t *testing.T) {
	t.Helper()
	var pos string
	if err := p.primary.DB(t, "").QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.replica.WaitGTID(ctx, pos); err != nil {
		t.Fatal(err)
	}
}

// gtidTx is one committed transaction of the writer, with its GTID.
type gtidTx struct {
	origin string // "domain-server" of its GTID
	seq    uint64
	ops    []op
}

// gtidWriter commits random transactions (the crash test's workload) on
// one connection and records each one's GTID, so the test can tell which
// of them survived a failover.
type gtidWriter struct {
	w    *workload
	conn *sql.Conn
	txs  []gtidTx
	last atomic.Uint64 // the GTID sequence number of the last commit
	// uncertain holds the ops of the transaction whose COMMIT, or the
	// question for its GTID, got no answer: it may or may not be on the
	// promoted replica.
	uncertain []op
}

func (g *gtidWriter) step(ctx context.Context) error {
	tx, err := g.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	n := 1
	if g.w.rng.IntN(4) == 0 {
		n = 2 + g.w.rng.IntN(4)
	}
	var pending []op
	for range n {
		o := g.w.pick(g.w.rows)
		pending = append(pending, o)
		if err := apply(tx, o); err != nil {
			_ = tx.Rollback()
			g.w.undo(pending)
			return err
		}
	}
	if g.w.rng.IntN(10) == 0 {
		g.w.undo(pending)
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		g.uncertain = pending
		return err
	}
	var gtid string
	if err := g.conn.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&gtid); err != nil {
		g.uncertain = pending // committed, under a GTID not known
		return err
	}
	i := strings.LastIndexByte(gtid, '-')
	seq, err := strconv.ParseUint(gtid[i+1:], 10, 64)
	if i <= 0 || err != nil {
		return fmt.Errorf("last_gtid %q", gtid)
	}
	g.txs = append(g.txs, gtidTx{origin: gtid[:i], seq: seq, ops: pending})
	g.last.Store(seq)
	return nil
}

// replicaGate makes the sink acknowledge an event only once the replica
// holds its transaction, as semi-synchronous replication guarantees for
// commits: without it, the primary's death could take with it transactions
// Ferry already delivered, and the right answer would be the refusal
// TestFailoverRefusals checks, not a resume. Until then the sink answers
// 503 and Ferry keeps the events unacknowledged.
type replicaGate struct {
	replica *mariadbtest.Server
	mu      sync.Mutex
	have    map[string]uint64
}

func (g *replicaGate) holds(e event.Event) bool {
	var d changeData
	if err := e.DataAs(&d); err != nil {
		return false
	}
	i := strings.LastIndexByte(d.Source.GTID, '-')
	seq, err := strconv.ParseUint(d.Source.GTID[i+1:], 10, 64)
	if i <= 0 || err != nil {
		return false
	}
	origin := d.Source.GTID[:i]
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.have[origin] < seq {
		if st, err := g.replica.GTIDState(context.Background()); err == nil {
			g.have = st
		}
	}
	return g.have[origin] >= seq
}

// TestFailoverToPromotedReplica kills the primary with SIGKILL under a
// random load (seed logged), promotes the replica, moves the source to it
// and checks that Ferry resumed exactly after its checkpoint: the distinct
// events are exactly the transactions the new primary's history holds, in
// order per key (duplicates identical), and the table rebuilt from
// them equals SELECT on the new primary. The source moves either by a
// config change and SIGHUP, or without Ferry knowing: its address is a
// forwarder (a VIP or proxy) that switches to the new primary, so the
// reconnect finds another server behind the same addr.
//
// ReplicaBehind stops the replica's receiver before the kill, once Ferry
// has read past it: the reconnect through the moved address finds a server
// without transactions the source read (not acknowledged), stops naming
// them, and resumes from its checkpoint when restarted.
func TestFailoverToPromotedReplica(t *testing.T) {
	t.Run("SIGHUP", func(t *testing.T) { testFailover(t, false, false) })
	t.Run("MovingAddress", func(t *testing.T) { testFailover(t, true, false) })
	t.Run("MovingAddressReplicaBehind", func(t *testing.T) { testFailover(t, true, true) })
}

func testFailover(t *testing.T, viaForwarder, replicaBehind bool) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	ctx := context.Background()
	pair := startMariaDBPair(t)

	gate := &replicaGate{replica: pair.replica}
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return !gate.holds(e) }, http.StatusServiceUnavailable)
	dir, adminAddr, serverID := t.TempDir(), freeAddr(t), nextServerID()
	cfg := pipelineConfig{server: pair.primary, db: pair.db, start: "latest", url: receiver.Start(t, r), admin: adminAddr, serverID: serverID}
	var fwd *forwarder
	if viaForwarder {
		fwd = startForwarder(t, pair.primary.Addr)
		cfg.addr = fwd.addr
	}
	cfgPath := cfg.yaml(t, dir)
	f := startFerryReady(t, cfgPath, adminAddr)

	w := &workload{rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}
	onPrimary := &gtidWriter{w: w, conn: conn(t, pair.primary, pair.db)}
	killPrimaryUnderLoad(t, pair, onPrimary, r, 150+rng.IntN(400), func() {
		if replicaBehind {
			readPastStoppedReplica(t, pair, onPrimary, adminAddr)
		}
	})
	want := promote(t, pair, onPrimary)

	if viaForwarder {
		fwd.switchTo(pair.replica.Addr)
		f = followMovedAddress(t, f, cfgPath, adminAddr)
	} else {
		cfg.server = pair.replica
		cfg.yaml(t, dir)
		hangup(t, f)
		eventually(t, 90*time.Second, "the source resumed on the promoted replica", func() bool {
			return strings.Contains(f.stderr.String(), "resuming on another server than the checkpoint's, by GTID")
		})
	}

	// The new primary's own transactions, on the rows it really holds.
	w.rows, w.next = selectV(t, pair.replica, pair.db), w.next+1000
	onReplica := &gtidWriter{w: w, conn: conn(t, pair.replica, pair.db)}
	for range 100 + rng.IntN(150) {
		if err := onReplica.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tx := range onReplica.txs {
		want = append(want, tx.ops...)
	}
	eventually(t, 90*time.Second, fmt.Sprintf("%d distinct events", len(want)), func() bool { return distinct(r.Events()) >= len(want) })
	if code := f.stop(); code != 0 {
		t.Fatalf("ferry exit code %d", code)
	}
	events := r.Events()
	// Duplicates are identical and come after their first arrival (at least
	// once: events acknowledged past the saved checkpoint are sent again).
	verifyAgainstWorkload(t, events, want)
	compareRebuilt(t, events, selectV(t, pair.replica, pair.db))
	t.Logf("%d changes delivered (%d duplicates): the primary's that survived, then %d transactions on the promoted replica",
		len(want), len(events)-distinct(events), len(onReplica.txs))
}

// readPastStoppedReplica stops the replica's receiver, lets the writer
// commit more on the primary and waits until Ferry has read them
// (/status position), so the source is ahead of the replica.
func readPastStoppedReplica(t *testing.T, pair *replicaPair, w *gtidWriter, adminAddr string) {
	t.Helper()
	if err := pair.replica.Exec(context.Background(), "STOP SLAVE IO_THREAD"); err != nil {
		t.Fatal(err)
	}
	target := w.last.Load() + 10
	eventually(t, 60*time.Second, fmt.Sprintf("ferry reading past 0-1-%d", target), func() bool {
		resp, err := http.Get("http://" + adminAddr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`gtid=0-1-(\d+)`).FindSubmatch(body)
		if m == nil {
			return false
		}
		read, _ := strconv.ParseUint(string(m[1]), 10, 64)
		return read >= target
	})
}

// followMovedAddress waits until the source reconnected through the
// moved address. A source that had read transactions the new server lacks
// (read, not acknowledged: the gate holds them back) stops instead of
// streaming another history after them. Ferry then waits for those
// in-flight events, which the gate never accepts, so the test stops it as
// an operator would (SIGTERM: exit 1 naming them) and restarts it: it
// resumes from its checkpoint, which the new server holds.
func followMovedAddress(t *testing.T, f *ferryProc, cfgPath, adminAddr string) *ferryProc {
	t.Helper()
	const resumed = "resuming on another server than the checkpoint's, by GTID"
	eventually(t, 90*time.Second, "the source resumed on the promoted replica, or stopped", func() bool {
		return strings.Contains(f.stderr.String(), resumed) || sourceState(adminAddr) == "stopped"
	})
	if strings.Contains(f.stderr.String(), resumed) {
		t.Log("the source reconnected to the promoted replica through the moved address")
		return f
	}
	if code := f.stop(); code != 1 || !strings.Contains(f.stderr.String(), "cannot continue at") {
		t.Fatalf("ferry exited %d without naming the transactions the new server lacks", code)
	}
	t.Logf("the source stopped: %s", lastLine(grepLines(f.stderr.String(), "cannot continue at")))
	f = startFerry(t, cfgPath)
	eventually(t, 90*time.Second, "the restarted source resumed on the promoted replica", func() bool {
		return strings.Contains(f.stderr.String(), resumed)
	})
	return f
}

// sourceState is the state /status reports for source db, "" when unknown.
func sourceState(adminAddr string) string {
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Sources map[string]struct {
			State string `json:"state"`
		} `json:"sources"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	return st.Sources["db"].State
}

// forwarder is a TCP forwarder standing for a virtual IP or a proxy in
// front of the database: switchTo moves it to another server and drops
// the connections to the old one.
type forwarder struct {
	addr   string
	mu     sync.Mutex
	target string
	conns  []net.Conn
}

func startForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{addr: ln.Addr().String(), target: target}
	t.Cleanup(func() { ln.Close(); f.switchTo("") })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *forwarder) serve(c net.Conn) {
	f.mu.Lock()
	target := f.target
	f.mu.Unlock()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, c, up)
	f.mu.Unlock()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	_, _ = io.Copy(c, up)
	c.Close()
}

func (f *forwarder) switchTo(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.target = target
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// killPrimaryUnderLoad runs w on the primary until the receiver got
// killAfter events and beforeKill returned, then kills the primary with
// SIGKILL; the writer stops on its first error.
func killPrimaryUnderLoad(t *testing.T, pair *replicaPair, w *gtidWriter, r *receiver.Receiver, killAfter int, beforeKill func()) {
	t.Helper()
	writerDone := make(chan error, 1)
	go func() {
		for {
			if err := w.step(context.Background()); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	eventually(t, 60*time.Second, fmt.Sprintf("%d events delivered", killAfter), func() bool { return r.Count() >= killAfter })
	beforeKill()
	if err := pair.primary.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("primary killed after %d events; the writer stopped with: %v", r.Count(), <-writerDone)
}

// promote promotes the replica and returns the ops of the writer's
// transactions it holds.
func promote(t *testing.T, pair *replicaPair, w *gtidWriter) []op {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := pair.replica.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	survived, err := pair.replica.GTIDState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the promoted replica holds the primary's transactions up to 0-1-%d: %d of %d committed transactions (uncertain one: %v)",
		survived["0-1"], len(w.txs)-lostTxs(w, survived["0-1"]), len(w.txs), w.uncertain != nil)
	return survivingOps(w, survived["0-1"])
}

// survivingOps are the ops of the writer's transactions the promoted
// replica holds (GTID sequence numbers of the primary up to last), the
// uncertain one included when the replica has it.
func survivingOps(g *gtidWriter, last uint64) []op {
	var ops []op
	var lastCertain uint64
	for _, tx := range g.txs {
		if tx.seq <= last {
			ops = append(ops, tx.ops...)
		}
		lastCertain = tx.seq
	}
	if g.uncertain != nil && last > lastCertain {
		ops = append(ops, g.uncertain...)
	}
	return ops
}

func lostTxs(g *gtidWriter, last uint64) int {
	n := 0
	for _, tx := range g.txs {
		if tx.seq > last {
			n++
		}
	}
	return n
}

func conn(t *testing.T, s *mariadbtest.Server, db string) *sql.Conn {
	t.Helper()
	c, err := s.DB(t, db).Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// selectV returns id -> v of the rows of t.
func selectV(t *testing.T, s *mariadbtest.Server, db string) map[int]int {
	t.Helper()
	rows, err := s.DB(t, db).Query("SELECT id, v FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var id, v int
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compareRebuilt applies the events (first arrival of each id, in arrival
// order, which is source order per key) and compares the table with want.
func compareRebuilt(t *testing.T, events []event.Event, want map[int]int) {
	t.Helper()
	got, seen := map[int]int{}, map[string]bool{}
	for _, e := range events {
		if seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		d := decode(t, e)
		switch d.Op {
		case "create", "update":
			got[int(d.After["id"].(float64))] = int(d.After["v"].(float64))
		case "delete":
			delete(got, int(d.Before["id"].(float64)))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("table rebuilt from the events differs from SELECT on the new primary:\nrebuilt %v\nselect  %v", got, want)
	}
}

// TestFailoverRefusals: a promoted replica that lacks transactions Ferry
// already delivered (diverged history), or that purged transactions after
// the checkpoint, is refused at start with a message naming the GTIDs and
// the way forward; nothing is streamed from it.
func TestFailoverRefusals(t *testing.T) {
	ctx := context.Background()
	pair := startMariaDBPair(t)
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: pair.primary, db: pair.db, start: "latest", url: receiver.Start(t, r), serverID: nextServerID()}
	f := startFerry(t, cfg.yaml(t, dir))
	eventually(t, 30*time.Second, "ferry streaming", func() bool { return strings.Contains(f.stderr.String(), "streaming binlog") })

	// The replica stops receiving; the primary commits 10 transactions that
	// Ferry delivers; the replica, cut off, writes its own.
	if err := pair.replica.Exec(ctx, "STOP SLAVE"); err != nil {
		t.Fatal(err)
	}
	primary := pair.primary.DB(t, pair.db)
	for i := 1; i <= 10; i++ {
		exec1(t, primary, fmt.Sprintf("INSERT INTO t VALUES (%d, 0)", i))
	}
	var lastDelivered string
	if err := primary.QueryRow("SELECT @@GLOBAL.gtid_binlog_pos").Scan(&lastDelivered); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "10 events", func() bool { return r.Count() >= 10 })
	if code := f.stop(); code != 0 {
		t.Fatalf("ferry exit code %d", code)
	}
	exec1(t, pair.replica.DB(t, pair.db), "INSERT INTO t VALUES (100, 0)", "INSERT INTO t VALUES (101, 0)")

	t.Run("Diverged", func(t *testing.T) {
		onReplica := cfg
		onReplica.server = pair.replica
		stderr := expectStartFailure(t, onReplica.yaml(t, dir), "lacks transactions already seen", lastDelivered,
			"history diverged", "ferry checkpoint set --source db")
		if strings.Contains(stderr, "streaming binlog") {
			t.Error("ferry streamed from the diverged server before refusing")
		}
	})

	t.Run("Purged", func(t *testing.T) {
		// The replica catches up (its own two transactions stay: another
		// domain-server pair, not a conflict), the primary commits more,
		// and the replica purges its first binlog, which held them.
		if err := pair.replica.Exec(ctx, "START SLAVE"); err != nil {
			t.Fatal(err)
		}
		for i := 11; i <= 15; i++ {
			exec1(t, primary, fmt.Sprintf("INSERT INTO t VALUES (%d, 0)", i))
		}
		pair.waitReplicated(t)
		purgeFirstBinlog(t, pair.replica)
		onReplica := cfg
		onReplica.server = pair.replica
		expectStartFailure(t, onReplica.yaml(t, dir), "is no longer in the server's binlogs", "purged transactions the checkpoint still needs",
			"0-1-", "ferry checkpoint set")
	})
	if t.Failed() {
		if b, err := os.ReadFile(pair.replica.ErrorLog); err == nil {
			t.Logf("replica error log:\n%s", tailLines(string(b), 20))
		}
	}
}
