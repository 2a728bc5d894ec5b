package integration

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestReplayedJSONEqualsLive: MariaDB marks no JSON column in the binlog
// (JSON is a LONGTEXT with a json_valid CHECK), so which columns are JSON
// comes from information_schema. An event re-read after the column stopped
// being JSON (a replay, a checkpoint set into the past) must still decode
// as it did live: the stream records the answer with the binlog position.
func TestReplayedJSONEqualsLive(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, j JSON)", `INSERT INTO t VALUES (1, '{"a": 1}')`)
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	waitEvents(t, r, 1)
	p.stop()
	exec1(t, db, "ALTER TABLE t MODIFY j LONGTEXT", `INSERT INTO t VALUES (2, '{"b": 2}')`)
	p = startFerry(t, cfg)
	live := waitEvents(t, r, 2)
	p.stop()
	want := map[float64]string{1: `{"a": 1}`, 2: `"{\"b\": 2}"`} // an object while JSON, a string after
	check := func(path string, events []any) {
		t.Helper()
		for _, e := range events {
			var d struct {
				After map[string]json.RawMessage `json:"after"`
			}
			if err := json.Unmarshal(e.([]byte), &d); err != nil {
				t.Fatal(err)
			}
			var id float64
			_ = json.Unmarshal(d.After["id"], &id)
			if string(d.After["j"]) != want[id] {
				t.Errorf("%s: row %v j = %s, want %s (as live)", path, id, d.After["j"], want[id])
			}
		}
	}
	data := func(from int) []any {
		var out []any
		for _, e := range r.Events()[from:] {
			out = append(out, e.Data())
		}
		return out
	}
	check("live", data(0))
	if len(live) != 2 {
		t.Fatalf("live: %d events", len(live))
	}

	if code, _, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start); code != 0 {
		t.Fatalf("replay: %d %s", code, errOut)
	}
	check("replay", data(2))
	if r.Count() != 4 {
		t.Fatalf("replay delivered %d events, want 2", r.Count()-2)
	}

	if code, _, errOut := runFerry(t, 30*time.Second, "checkpoint", "set", "--source", "db", "-c", cfg, start); code != 0 {
		t.Fatalf("checkpoint set: %d %s", code, errOut)
	}
	p = startFerry(t, cfg)
	waitEvents(t, r, 6)
	p.stop()
	check("checkpoint set into the past", data(4))
}
