package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestSourceFailureWithRefusingSinkExits: the source stops on a fatal error
// (an undecodable row event) while the sink refuses, with 503, the event
// read before it. ferry run gives the drain its shutdown_timeout (10s),
// exits 1 with the source's error, and keeps the event: the next run,
// with the sink back, delivers it before stopping on the same error.
func TestSourceFailureWithRefusingSinkExits(t *testing.T) {
	t.Parallel()
	srv := minimalServer(t)
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	start := binlogPos(t, srv)
	exec1(t, db, "CREATE TABLE u (id INT PRIMARY KEY)", "INSERT INTO u VALUES (7)",
		"INSERT INTO t VALUES (100)", "ALTER TABLE t ADD COLUMN v INT")

	r := receiver.New()
	r.SetOutage(true)
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	if code := p.wait(2 * time.Minute); code != 1 { // far above the 10s shutdown_timeout
		t.Fatalf("exit code %d, want 1", code)
	}
	if r.Attempts() == 0 {
		t.Fatal("the sink was never tried: the event of u was not in flight when the source failed")
	}
	if stderr := p.stderr.String(); !strings.Contains(stderr, "cannot decode the row event") {
		t.Fatalf("exit without the source's error:\n%s", tailLines(stderr, 5))
	}

	r.SetOutage(false)
	p2 := startFerry(t, cfg)
	if code := p2.wait(2 * time.Minute); code != 1 {
		t.Fatalf("second run: exit code %d, want 1", code)
	}
	events := r.Events()
	if len(events) != 1 || decode(t, events[0]).Table != "u" || decode(t, events[0]).After["id"] != float64(7) {
		t.Fatalf("second run delivered %v, want the row of u the first run could not deliver", eventIDs(r))
	}
}
