package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestExcludedColumnsNeverLeave: exclude_columns written in another case
// than the columns still remove them, and no path lets their values out:
// the stream, a sink's dead letters (`dlq list --json`), `run --capture`,
// a replay and a backfill. An exclusion that hits a key column is refused.
func TestExcludedColumnsNeverLeave(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE people (id INT PRIMARY KEY, Name VARCHAR(20), SSN VARCHAR(20), Card_No VARCHAR(20))",
		"INSERT INTO people VALUES (1, 'ann', 'SECRET-SSN-1', 'SECRET-CARD-1')",
		"INSERT INTO people VALUES (2, 'bob', 'SECRET-SSN-2', 'SECRET-CARD-2')",
		"UPDATE people SET SSN = 'SECRET-SSN-3', Card_No = 'SECRET-CARD-3' WHERE id = 1")
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return strings.Contains(string(e.Data()), `"bob"`) }, 400) // a dead letter
	dir := t.TempDir()
	exclude := fmt.Sprintf("    exclude_columns: [\"%s.people.ssn\", \"%s.*.CARD_*\"]\n", name, name)
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r), extra: exclude}.yaml(t, dir)
	capture := filepath.Join(dir, "captured.jsonl")

	p := startFerryArgs(t, "run", "-c", cfg, "--capture", capture)
	streamed := waitEvents(t, r, 2) // ann's insert and update; bob's is dead-lettered
	p.stop()
	leaks := func(path, text string) {
		t.Helper()
		if strings.Contains(text, "SECRET") {
			t.Errorf("%s carries an excluded column: %s", path, text)
		}
	}
	for _, e := range streamed {
		leaks("stream", string(e.Data()))
		if !strings.Contains(string(e.Data()), `"Name"`) {
			t.Errorf("stream event lost a column that is not excluded: %s", e.Data())
		}
	}
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "--json", "-c", cfg)
	if code != 0 || !strings.Contains(out, "bob") {
		t.Fatalf("dlq list: %d %q %q", code, out, errOut)
	}
	leaks("dead letters", out)
	captured, err := os.ReadFile(capture)
	if err != nil || !strings.Contains(string(captured), "ann") {
		t.Fatalf("capture: %v %q", err, captured)
	}
	leaks("capture", string(captured))

	r.FailMatching(nil, 0)
	before := r.Count()
	if code, _, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start); code != 0 {
		t.Fatalf("replay: %d %s", code, errOut)
	}
	if code, _, errOut := runFerry(t, time.Minute, "backfill", "-c", cfg, "--source", "db", "--table", name+".people"); code != 0 {
		t.Fatalf("backfill: %d %s", code, errOut)
	}
	events := r.Events()[before:]
	if len(events) < 5 {
		t.Fatalf("replay and backfill delivered %d events, want 3 + 2", len(events))
	}
	for _, e := range events {
		leaks("replay/backfill", string(e.Data()))
	}

	keyCfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, receiver.New()),
		extra: fmt.Sprintf("    exclude_columns: [\"%s.people.ID\"]\n", name)}.yaml(t, t.TempDir())
	kp := startFerry(t, keyCfg)
	if code := kp.wait(30 * time.Second); code != 1 || !strings.Contains(kp.stderr.String(), "a column of its key") {
		t.Fatalf("excluding a key column: exit %d, stderr:\n%s", code, tailLines(kp.stderr.String(), 5))
	}
}
