package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestSnapshotInitial: `snapshot: initial` backfills every captured table on
// the first start, a keyless one by its configured unique key, while it
// streams; a restart does not backfill again.
func TestSnapshotInitial(t *testing.T) {
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE a (id INT PRIMARY KEY, v INT)", "CREATE TABLE k (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY (code))",
		"CREATE TABLE empty (id INT PRIMARY KEY)",
		"INSERT INTO a SELECT seq, seq FROM seq_1_to_5000", "INSERT INTO k VALUES ('x', 1), ('y', 2)")
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: "latest", url: receiver.Start(t, r), mode: "batch",
		extra: fmt.Sprintf("    snapshot: initial\n    snapshot_chunk: 700\n    snapshot_keys: {%s.k: [code]}", name)}.yaml(t, dir)
	p := startFerry(t, cfg)
	eventually(t, time.Minute, "the snapshot", func() bool { return r.Count() >= 5002 })
	exec1(t, db, "UPDATE a SET v = -1 WHERE id = 5000", "INSERT INTO k VALUES ('z', 3)")
	eventually(t, time.Minute, "the streamed changes", func() bool { return r.Count() >= 5004 })
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	types := map[string]int{}
	for _, e := range r.Events() {
		types[strings.TrimPrefix(e.Type(), "com.example."+name+".")]++
	}
	if types["a.snapshot"] != 5000 || types["k.snapshot"] != 2 || types["a.updated"] != 1 || types["k.created"] != 1 || len(types) != 4 {
		t.Fatalf("event types %v", types)
	}
	if !strings.Contains(p.stderr.String(), "initial snapshot queued") {
		t.Errorf("no log line for the initial snapshot")
	}

	p = startFerry(t, cfg)
	exec1(t, db, "INSERT INTO a VALUES (6000, 6)")
	eventually(t, time.Minute, "the change after the restart", func() bool { return r.Count() >= 5005 })
	time.Sleep(300 * time.Millisecond) // a second snapshot would have started by now
	if code := p.stop(); code != 0 || r.Count() != 5005 {
		t.Fatalf("after a restart: exit %d, %d events in all, want 5005 (no second snapshot)", code, r.Count())
	}
}

// TestSnapshotInitialRefusesKeylessTables: a table without a key to page
// by stops the first start with a message naming it and the fix.
func TestSnapshotInitialRefusesKeylessTables(t *testing.T) {
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE nokey (a INT, b INT)")
	cfg := pipelineConfig{server: shared, db: name, start: "latest", url: "http://127.0.0.1:1/",
		extra: "    snapshot: initial"}.yaml(t, t.TempDir())
	code, _, errOut := runFerry(t, time.Minute, "run", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "these tables have no primary key: "+name+".nokey") || !strings.Contains(errOut, "snapshot_keys") {
		t.Fatalf("exit %d; stderr:\n%s", code, tailLines(errOut, 5))
	}
}
