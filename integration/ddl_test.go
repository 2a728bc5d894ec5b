package integration

import (
	"regexp"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestTruncateIsAnEvent: TRUNCATE TABLE of a captured table is one event,
// op truncate, type suffix truncated, table-wide partition key, in order
// with the rows around it.
func TestTruncateIsAnEvent(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE other (id INT PRIMARY KEY)",
		"INSERT INTO t VALUES (1), (2)", "TRUNCATE TABLE t", "TRUNCATE other", "INSERT INTO t VALUES (3)")
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r),
		extra: "    exclude: [\"" + name + ".other\"]"}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	events := sortBySource(t, waitEvents(t, r, 4))
	if len(events) != 4 {
		t.Fatalf("got %d events, want 4 (the truncate of an excluded table is not one)", len(events))
	}
	e := events[2]
	d := decode(t, e)
	if e.Type() != "com.example."+name+".t.truncated" || d.Op != "truncate" || d.Table != "t" || d.Before != nil || d.After != nil ||
		e.Subject() != "" || e.Extensions()["partitionkey"] != name+".t" || e.ID() != d.Tx.ID+"#1" || !mariaGTID.MatchString(d.Tx.ID) {
		t.Errorf("truncate event: type %s id %s subject %q partitionkey %v data %s", e.Type(), e.ID(), e.Subject(), e.Extensions()["partitionkey"], e.Data())
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestUndecodableRowEventStopsWithAWayForward: on a server without column
// metadata, a row event older than the schema history (the table was
// created before the start position and altered since) cannot be decoded;
// the source stops (exit 1) naming the event, its transaction, the table
// and the exact `ferry checkpoint set` that skips it; doing that delivers
// what follows.
func TestUndecodableRowEventStopsWithAWayForward(t *testing.T) {
	t.Parallel()
	srv := minimalServer(t)
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	start := binlogPos(t, srv)
	exec1(t, db, "INSERT INTO t VALUES (100)", "ALTER TABLE t ADD COLUMN v INT", "INSERT INTO t VALUES (2, 2)")

	r := receiver.New()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	if code := p.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	stderr := p.stderr.String()
	t.Logf("the error: %s", tailLines(stderr, 1))
	m := regexp.MustCompile("cannot decode the row event at (\\S+) in transaction .*no schema in the history for " + name + ".t .*`ferry checkpoint set --source db (\\S+)`").FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no error naming the event and the way forward:\n%s", tailLines(stderr, 5))
	}
	if ids := eventIDs(r); len(ids) != 0 {
		t.Fatalf("delivered before the stop: %v, want nothing", ids)
	}
	if code, _, errOut := runFerry(t, 30*time.Second, "checkpoint", "set", "-c", cfg, "--source", "db", m[2]); code != 0 {
		t.Fatalf("checkpoint set %s: %d %s", m[2], code, errOut)
	}
	p2 := startFerry(t, cfg)
	events := waitEvents(t, r, 1)
	if d := decode(t, events[0]); len(events) != 1 || d.After["id"] != float64(2) || d.After["v"] != float64(2) {
		t.Fatalf("after skipping: %d events, last %s", len(events), events[len(events)-1].Data())
	}
	if code := p2.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func eventIDs(r *receiver.Receiver) []string {
	var ids []string
	for _, e := range r.Events() {
		ids = append(ids, e.ID())
	}
	return ids
}
