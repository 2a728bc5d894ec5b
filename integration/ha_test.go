package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/kubefake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// haConfig is one replica's configuration: the same source, lease and
// checkpoint table for every replica; its own state.dir and admin port.
func haConfig(t *testing.T, dir, db, start, url, adminAddr string, serverID uint32) string {
	t.Helper()
	return haConfigLease(t, dir, db, start, url, adminAddr, serverID, "  lease: mysql\n  renew_interval: 500ms\n")
}

// haConfigLease is haConfig with the given body of the ha block.
func haConfigLease(t *testing.T, dir, db, start, url, adminAddr string, serverID uint32, ha string) string {
	t.Helper()
	return pipelineConfig{server: shared, db: db, start: start, url: url, mode: "batch", serverID: serverID, admin: adminAddr,
		state: fmt.Sprintf("  checkpoints: {type: mysql, database: %s}\n", db), top: "ha:\n" + ha}.yaml(t, dir)
}

// adminStatus is the part of /status the HA tests read.
type adminStatus struct {
	Role  string `json:"role"`
	Sinks map[string]struct {
		Delivered uint64 `json:"delivered"`
	} `json:"sinks"`
}

func getStatus(addr string) (adminStatus, bool) {
	var st adminStatus
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st) == nil
}

func getBody(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startReplicaPair creates table t and starts replica A (leading, once
// it answers so) and replica B (standing by) of one configuration.
func startReplicaPair(t *testing.T) (db *sql.DB, r *receiver.Receiver, a, b *ferryProc, adminA, adminB string) {
	t.Helper()
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	r = receiver.New()
	url := receiver.Start(t, r)
	serverID := nextServerID()
	adminA, adminB = freeAddr(t), freeAddr(t)
	a = startFerry(t, haConfig(t, t.TempDir(), name, start, url, adminA, serverID))
	eventually(t, 30*time.Second, "replica A leading", func() bool { st, ok := getStatus(adminA); return ok && st.Role == "leader" })
	b = startFerry(t, haConfig(t, t.TempDir(), name, start, url, adminB, serverID))
	eventually(t, 30*time.Second, "replica B standing by", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "standby" })
	return db, r, a, b, adminA, adminB
}

// TestHAFailover runs two replicas of one configuration: exactly one
// streams; after kill -9 of the leader the standby takes over and resumes
// from the shared checkpoint: every committed row arrives, duplicates
// carry identical ids and data, and nothing is re-sent from the start.
func TestHAFailover(t *testing.T) {
	db, r, a, b, adminA, adminB := startReplicaPair(t)
	if code, body := getBody(adminB, "/readyz"); code != http.StatusOK || body != "standby\n" {
		t.Fatalf("standby /readyz = %d %q, want 200 standby", code, body)
	}

	_, stopWriter := writeRows(t, db, time.Millisecond)
	eventually(t, 30*time.Second, "500 events through the leader", func() bool { return r.Count() >= 500 })
	stA, _ := getStatus(adminA)
	stB, _ := getStatus(adminB)
	if stA.Sinks["recv"].Delivered == 0 || stB.Sinks["recv"].Delivered != 0 || stB.Role != "standby" {
		t.Fatalf("exactly one replica must deliver: leader %+v, standby %+v", stA, stB)
	}
	if _, m := getBody(adminB, "/metrics"); !strings.Contains(m, `ferry_ha_leader{source="db"} 0`) {
		t.Errorf("standby metrics lack ferry_ha_leader 0:\n%s", grepLines(m, "ferry_ha"))
	}

	beforeKill := r.Count()
	a.kill()
	killed := time.Now()
	eventually(t, 30*time.Second, "replica B leading", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "leader" })
	takeover := time.Since(killed)
	eventually(t, 30*time.Second, "deliveries by B", func() bool { st, _ := getStatus(adminB); return st.Sinks["recv"].Delivered > 0 })
	firstDelivery := time.Since(killed)
	t.Logf("takeover after kill -9: leader in %v, first delivery in %v", takeover.Round(time.Millisecond), firstDelivery.Round(time.Millisecond))
	if takeover > 10*time.Second {
		t.Errorf("standby took %v to take over; the requirement is 10s", takeover)
	}
	time.Sleep(500 * time.Millisecond) // rows written while B leads
	n := stopWriter()
	events := allRows(t, r, n)
	dups := checkDuplicates(t, events)
	t.Logf("%d rows written, %d events received (%d before the kill), %d duplicates", n, len(events), beforeKill, dups)
	if dups >= beforeKill/2 {
		t.Errorf("%d duplicates of %d events delivered before the kill: the standby did not resume from the shared checkpoint", dups, beforeKill)
	}
	if code := b.stop(); code != 0 {
		t.Fatalf("standby-turned-leader exit %d", code)
	}
}

// allRows waits until rows 1..n all arrived and returns the events.
func allRows(t *testing.T, r *receiver.Receiver, n int) []event.Event {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("all %d rows", n), func() bool { return len(rowIDs(t, r.Events())) >= n })
	events := r.Events()
	ids := rowIDs(t, events)
	for i := 1; i <= n; i++ {
		if !ids[i] {
			t.Fatalf("row %d never arrived", i)
		}
	}
	return events
}

// TestHALeaseLost: when the leader's lock session ends under it (as after
// a network partition), it stops streaming and stands by; the other
// replica takes over; nothing is lost.
func TestHALeaseLost(t *testing.T) {
	db, r, a, b, adminA, adminB := startReplicaPair(t)
	_, stopWriter := writeRows(t, db, time.Millisecond)
	eventually(t, 30*time.Second, "300 events", func() bool { return r.Count() >= 300 })

	var holder int64
	if err := db.QueryRow("SELECT IS_USED_LOCK('ferry-db')").Scan(&holder); err != nil {
		t.Fatal(err)
	}
	exec1(t, db, "KILL CONNECTION "+strconv.FormatInt(holder, 10))
	eventually(t, 30*time.Second, "B leading, A standing by", func() bool {
		sa, okA := getStatus(adminA)
		sb, okB := getStatus(adminB)
		return okA && okB && sa.Role == "standby" && sb.Role == "leader"
	})
	if !strings.Contains(a.stderr.String(), "ha: lost the lease; stopped streaming and standing by") {
		t.Errorf("A does not log the loss:\n%s", grepLines(a.stderr.String(), "ha:"))
	}
	eventually(t, 30*time.Second, "deliveries by B", func() bool { st, _ := getStatus(adminB); return st.Sinks["recv"].Delivered > 0 })
	time.Sleep(300 * time.Millisecond)
	n := stopWriter()
	events := allRows(t, r, n)
	t.Logf("%d rows, %d events, %d duplicates", n, len(events), checkDuplicates(t, events))
	t.Logf("A:\n%s\nB:\n%s", grepLines(a.stderr.String(), "ha:"), grepLines(b.stderr.String(), "ha:"))
	if !a.running() {
		t.Fatal("the deposed leader exited; it should stand by")
	}
	for _, p := range []*ferryProc{a, b} {
		if code := p.stop(); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
}

// TestHAKubernetesLease: the same failover with a Kubernetes Lease on a
// fake API server: the standby takes the Lease once the killed leader's
// renewals stop for lease_duration, and resumes from the shared checkpoint.
func TestHAKubernetesLease(t *testing.T) {
	api := kubefake.New("token-for-test")
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("token-for-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	haBlock := func(id string) string {
		return fmt.Sprintf("  lease: kubernetes\n  renew_interval: 500ms\n  kubernetes: {namespace: apps, identity: %s, lease_duration: 3s, api_server: %q, token_file: %q}\n",
			id, apiSrv.URL, tok)
	}
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	r := receiver.New()
	url := receiver.Start(t, r)
	serverID := nextServerID()
	adminA, adminB := freeAddr(t), freeAddr(t)
	a := startFerry(t, haConfigLease(t, t.TempDir(), name, start, url, adminA, serverID, haBlock("replica-a")))
	eventually(t, 30*time.Second, "replica A leading", func() bool { st, ok := getStatus(adminA); return ok && st.Role == "leader" })
	startFerry(t, haConfigLease(t, t.TempDir(), name, start, url, adminB, serverID, haBlock("replica-b")))
	eventually(t, 30*time.Second, "replica B standing by", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "standby" })
	_, stopWriter := writeRows(t, db, time.Millisecond)
	eventually(t, 30*time.Second, "300 events", func() bool { return r.Count() >= 300 })
	beforeKill := r.Count()
	a.kill()
	killed := time.Now()
	eventually(t, 30*time.Second, "replica B leading", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "leader" })
	t.Logf("takeover after kill -9 with lease_duration 3s: %v", time.Since(killed).Round(time.Millisecond))
	if h := api.Holder(kubefake.LeasePath("apps", "ferry")); h != "replica-b" {
		t.Errorf("Lease holder = %q, want replica-b", h)
	}
	eventually(t, 30*time.Second, "deliveries by B", func() bool { st, _ := getStatus(adminB); return st.Sinks["recv"].Delivered > 0 })
	n := stopWriter()
	events := allRows(t, r, n)
	dups := checkDuplicates(t, events)
	t.Logf("%d rows, %d events (%d before the kill), %d duplicates", n, len(events), beforeKill, dups)
	if dups >= beforeKill/2 {
		t.Errorf("%d duplicates of %d events delivered before the kill: not resumed from the shared checkpoint", dups, beforeKill)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// rowIDs returns the ids of rows of table t that arrived; any event of
// another table (the checkpoint table included) fails the test.
func rowIDs(t *testing.T, events []event.Event) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, e := range events {
		d := decode(t, e)
		if d.Table != "t" {
			t.Fatalf("unexpected event of table %s.%s: %s", d.DB, d.Table, e.ID())
		}
		id, _ := d.After["id"].(float64)
		out[int(id)] = true
	}
	return out
}

// checkDuplicates fails on a duplicate id whose event differs, and
// returns the number of duplicates.
func checkDuplicates(t *testing.T, events []event.Event) int {
	t.Helper()
	first := map[string]event.Event{}
	dups := 0
	for _, e := range events {
		prev, dup := first[e.ID()]
		if !dup {
			first[e.ID()] = e
			continue
		}
		dups++
		if string(prev.Data()) != string(e.Data()) || prev.Type() != e.Type() {
			t.Errorf("duplicate %s differs:\n%s\n%s", e.ID(), prev.Data(), e.Data())
		}
	}
	return dups
}

// TestHACheckpointCommands: `ferry checkpoint` reads the shared table, and
// refuses to change it while a replica streams.
func TestHACheckpointCommands(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	r := receiver.New()
	adminA := freeAddr(t)
	cfg := haConfig(t, t.TempDir(), name, start, receiver.Start(t, r), adminA, nextServerID())
	p := startFerry(t, cfg)
	exec1(t, db, "INSERT INTO t VALUES (1, 'one')")
	waitEvents(t, r, 1)
	eventually(t, 10*time.Second, "a checkpoint in the shared table", func() bool {
		var n int
		return db.QueryRow("SELECT COUNT(*) FROM ferry_checkpoints WHERE source_key = 'db'").Scan(&n) == nil && n == 1
	})
	code, out, errOut := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db")
	if code != 0 || !strings.Contains(out, "db: mysql-bin.") {
		t.Fatalf("checkpoint show: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runFerry(t, 30*time.Second, "checkpoint", "reset", "-c", cfg, "--source", "db")
	if code == 0 || !strings.Contains(errOut, "a replica is streaming") {
		t.Fatalf("checkpoint reset beside a leader: exit %d\n%s", code, errOut)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry exit %d", code)
	}
	code, out, errOut = runFerry(t, 30*time.Second, "checkpoint", "reset", "-c", cfg, "--source", "db")
	if code != 0 {
		t.Fatalf("checkpoint reset: exit %d\n%s%s", code, out, errOut)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM ferry_checkpoints").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows left after reset: %d, %v", n, err)
	}
}
