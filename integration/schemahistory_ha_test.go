package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestHASchemaHistoryFollowsTheLeader: two replicas share a checkpoint
// table and a lease on a server without column metadata. Replica A streams
// a random DDL burst; then its sink fails, so A reads (and records in the
// shared schema history) the second part of the burst but its checkpoint
// stays before it, and A is killed -9. B resumes from A's checkpoint and
// must decode that part with the schemas A recorded: with a history of its
// own (taken at the takeover, after the burst) those rows would be decoded
// with today's schemas, or stop the source. More DDL runs while no replica
// leads and after B took over. Every row arrives equal to SELECT.
func TestHASchemaHistoryFollowsTheLeader(t *testing.T) {
	t.Parallel()
	seed := ddlSeed(t)
	srv := minimalServer(t)
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	w := newDDLWorkload(t, db, seed)
	r := receiver.New()
	url := receiver.Start(t, r)
	serverID := nextServerID()
	replica := func(adminAddr string) string {
		return pipelineConfig{server: srv, db: name, start: start, url: url, serverID: serverID, admin: adminAddr,
			state: fmt.Sprintf("  checkpoints: {type: mysql, database: %s}\n", name),
			top:   "ha:\n  lease: mysql\n  renew_interval: 500ms\n"}.yaml(t, t.TempDir())
	}
	adminA, adminB := freeAddr(t), freeAddr(t)
	cfgA, cfgB := replica(adminA), replica(adminB)
	a := startFerry(t, cfgA)
	eventually(t, 30*time.Second, "replica A leading", func() bool { st, ok := getStatus(adminA); return ok && st.Role == "leader" })
	b := startFerry(t, cfgB)
	eventually(t, 30*time.Second, "replica B standing by", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "standby" })

	steps := envInt(t, "DDL_STEPS", 40)
	for range steps / 2 {
		w.step()
	}
	eventually(t, 60*time.Second, "A delivering the first part of the burst", func() bool { return r.Count() >= len(w.want) })
	// A reads the second part but delivers none of it: its checkpoint
	// stays before every DDL of that part.
	r.SetOutage(true)
	for range steps / 4 {
		w.step()
	}
	eventually(t, 60*time.Second, "A reading the second part", func() bool { return changesRead(t, adminA) >= uint64(len(w.want)) })
	a.kill()
	r.SetOutage(false)
	for range steps / 8 { // DDL and rows while no replica leads
		w.step()
	}
	eventually(t, 30*time.Second, "replica B leading", func() bool { st, ok := getStatus(adminB); return ok && st.Role == "leader" })
	for range steps - steps/2 - steps/4 - steps/8 {
		w.step()
	}
	checkDDLEvents(t, "ha failover", waitDistinct(t, r, len(w.want)), w.want)
	if st, _ := getStatus(adminB); st.Sinks["recv"].Delivered == 0 {
		t.Errorf("replica B delivered nothing: the takeover did not happen as the test needs")
	}

	// The history is in the shared table, not only in A's state.dir.
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM ferry_checkpoints" + "_schema_history WHERE source_key = 'db' AND record LIKE '%\"origin\":\"ddl\"%'").Scan(&n); err != nil || n == 0 {
		t.Fatalf("DDL versions in the shared schema history table: %d, %v", n, err)
	}
	// `schema show` reads it from there while the replica runs.
	code, out, errOut := runFerry(t, 30*time.Second, "schema", "show", "-c", cfgB, "--source", "db", "--json")
	if code != 0 || strings.Count(out, `"origin":"ddl"`) != n {
		t.Errorf("schema show: exit %d, %d DDL versions, want %d: %s", code, strings.Count(out, `"origin":"ddl"`), n, errOut)
	}

	// A resync writes the shared history under the lease: refused from a
	// replica that does not lead, done by the leader (its admin API), and
	// by the command itself once no replica runs.
	table := name + "." + w.tables[0].name
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfgA, "--source", "db", "--table", table)
	if code == 0 || !strings.Contains(errOut, "leading replica") {
		t.Errorf("resync beside a streaming leader: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfgB, "--source", "db", "--table", table)
	if code != 0 || !strings.Contains(out, "in force from") {
		t.Errorf("resync through the leader: exit %d %s %s", code, out, errOut)
	}
	if code := b.stop(); code != 0 {
		t.Fatalf("replica B exit %d: %s", code, tailLines(b.stderr.String(), 5))
	}
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfgA, "--source", "db", "--table", table)
	if code != 0 || !strings.Contains(out, "in force from") {
		t.Errorf("resync with no replica running: exit %d %s %s", code, out, errOut)
	}
	at := strings.TrimSpace(out[strings.LastIndex(out, "in force from ")+len("in force from "):])
	code, out, _ = runFerry(t, 30*time.Second, "schema", "show", "-c", cfgA, "--source", "db", "--table", table, "--json")
	if code != 0 || !strings.Contains(out, `"at":"`+at+`","origin":"resync"`) {
		t.Errorf("schema show lacks the resync at %s: exit %d\n%s", at, code, out)
	}
}
