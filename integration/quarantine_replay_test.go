package integration

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestQuarantinedRowsReplayAfterResync: an unreadable DDL quarantines a
// table on a server without column metadata, and the rows written to it
// meanwhile (inserts, updates, deletes; unsigned, latin1, ENUM and the
// columns the DDL added) become dead letters. `ferry schema resync` lifts
// the quarantine from that DDL on and prints the replay that delivers
// them; the replay does, with every row equal to SELECT, and removes their
// dead letters. Then the same while ferry runs: the resync and the replay
// go through its admin API.
func TestQuarantinedRowsReplayAfterResync(t *testing.T) {
	t.Parallel()
	srv := minimalServer(t)
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE q (id INT PRIMARY KEY, a INT UNSIGNED NOT NULL, s VARCHAR(40) CHARACTER SET latin1, e ENUM('x','y','z'))",
		"CREATE TABLE ok (id INT PRIMARY KEY)")
	r := receiver.New()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, r), admin: freeAddr(t)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	exec1(t, db, "INSERT INTO q VALUES (100, 1, 'before', 'x')", "INSERT INTO ok VALUES (1)")
	waitEvents(t, r, 2)

	exec1(t, db, "ALTER TABLE q WAIT 5 ADD COLUMN v VARCHAR(20) NOT NULL DEFAULT 'd', ADD COLUMN big BIGINT UNSIGNED")
	changes := 0
	for i := range 30 {
		exec1(t, db, fmt.Sprintf("INSERT INTO q VALUES (%d, %d, 'caf\u00e9 %d', '%s', 'v%d', %d)", i, 4294967295-i, i, []string{"x", "y", "z"}[i%3], i, uint64(18446744073709551615)-uint64(i)))
		changes++
	}
	exec1(t, db, "UPDATE q SET s = 'na\u00efve', big = NULL WHERE id < 5", "DELETE FROM q WHERE id IN (7, 8)", "UPDATE q SET v = 'old' WHERE id = 100")
	changes += 5 + 2 + 1
	exec1(t, db, "INSERT INTO ok VALUES (2)")
	eventually(t, 30*time.Second, "the second row of ok", func() bool { return r.Count() >= 3 })
	for _, e := range r.Events()[2:] {
		if d := decode(t, e); d.Table != "ok" {
			t.Fatalf("a row of the quarantined table was delivered: %s", e.Data())
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := quarantineLetters(t, cfg); n != changes {
		t.Fatalf("%d dead letters of the quarantine, want %d", n, changes)
	}

	code, out, errOut := runFerry(t, 30*time.Second, "schema", "resync", "-c", cfg, "--source", "db", "--table", name+".q")
	if code != 0 {
		t.Fatalf("schema resync: %d %s %s", code, out, errOut)
	}
	m := regexp.MustCompile(`ferry replay -c \S+ --source db --table ` + name + `\.q --from (\S+) --until (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("schema resync names no replay of the quarantined rows:\n%s", out)
	}
	code, _, errOut = runFerry(t, 2*time.Minute, "replay", "-c", cfg, "--source", "db", "--table", name+".q", "--from", m[1], "--until", m[2])
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, tailLines(errOut, 5))
	}
	if !strings.Contains(errOut, fmt.Sprintf("%d dead letter(s) of quarantined rows", changes)) {
		t.Errorf("the replay does not say it removed the %d dead letters:\n%s", changes, tailLines(errOut, 5))
	}
	if n := quarantineLetters(t, cfg); n != 0 {
		t.Errorf("%d dead letters of the quarantine left after the replay", n)
	}
	replayed := r.Events()[3:]
	if len(replayed) != changes {
		t.Errorf("the replay delivered %d changes, want %d", len(replayed), changes)
	}
	last := map[string]map[string]any{} // id -> last after image (nil: deleted)
	for _, e := range replayed {
		var d struct {
			Op    string
			Table string
			PK    map[string]any
			After map[string]any
		}
		dec := json.NewDecoder(bytes.NewReader(e.Data()))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Table != "q" {
			t.Fatalf("the replay delivered a row of %s: %s", d.Table, e.Data())
		}
		last[fmt.Sprint(d.PK["id"])] = d.After
	}
	checkReplayedRows(t, db, last)

	// Live: a second unreadable DDL while ferry runs.
	p = startFerry(t, cfg)
	exec1(t, db, "ALTER TABLE q NOWAIT ADD COLUMN w INT")
	for i := 200; i < 210; i++ {
		exec1(t, db, fmt.Sprintf("INSERT INTO q (id, a, s, e, w) VALUES (%d, 1, 's', 'y', %d)", i, i*10))
	}
	exec1(t, db, "INSERT INTO ok VALUES (3)")
	eventually(t, 30*time.Second, "the third row of ok", func() bool {
		for _, e := range r.Events() {
			if d := decode(t, e); d.Table == "ok" && fmt.Sprint(d.After["id"]) == "3" {
				return true
			}
		}
		return false
	})
	if n := quarantineLetters(t, cfg); n != 10 {
		t.Fatalf("%d dead letters of the second quarantine, want 10", n)
	}
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfg, "--source", "db", "--table", name+".q")
	m = regexp.MustCompile(`--from (\S+) --until (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("live schema resync: %d %s %s", code, out, errOut)
	}
	before := r.Count()
	code, _, errOut = runFerry(t, 2*time.Minute, "replay", "-c", cfg, "--source", "db", "--table", name+".q", "--from", m[1], "--until", m[2])
	if code != 0 {
		t.Fatalf("live replay: exit %d: %s", code, tailLines(errOut, 5))
	}
	got := map[string]string{}
	for _, e := range r.Events()[before:] {
		if d := decode(t, e); d.Table == "q" {
			got[fmt.Sprint(d.After["id"])] = fmt.Sprint(d.After["w"])
		}
	}
	for i := 200; i < 210; i++ {
		var w string
		if err := db.QueryRow("SELECT w FROM q WHERE id = ?", i).Scan(&w); err != nil {
			t.Fatal(err)
		}
		if got[fmt.Sprint(i)] != w {
			t.Errorf("live replay: row %d has w %q, SELECT %q", i, got[fmt.Sprint(i)], w)
		}
	}
	if n := quarantineLetters(t, cfg); n != 0 {
		t.Errorf("%d dead letters of the second quarantine left after the live replay", n)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// quarantineLetters counts the dead letters of quarantined rows.
func quarantineLetters(t *testing.T, cfg string) int {
	t.Helper()
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "--json", "-c", cfg)
	if code != 0 {
		t.Fatalf("dlq list: %d %s", code, errOut)
	}
	return strings.Count(out, `"rule":"schema-quarantine"`)
}

// checkReplayedRows compares the last delivered image of each row of q
// (nil: deleted) with the table as SELECT shows it.
func checkReplayedRows(t *testing.T, db *sql.DB, last map[string]map[string]any) {
	t.Helper()
	rows, err := db.Query("SELECT id, a, s, e, v, big FROM q WHERE id < 100")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols := []string{"id", "a", "s", "e", "v", "big"}
	seen := 0
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		seen++
		got, ok := last[vals[0].String]
		if !ok || got == nil {
			t.Errorf("row %s: not delivered by the replay (or last as a delete)", vals[0].String)
			continue
		}
		for i, c := range cols {
			want := "<null>"
			if vals[i].Valid {
				want = vals[i].String
			}
			g := "<null>"
			if got[c] != nil {
				g = fmt.Sprint(got[c])
			}
			if g != want {
				t.Errorf("row %s column %s: delivered %q, SELECT %q", vals[0].String, c, g, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"7", "8"} {
		if after, ok := last[id]; !ok || after != nil {
			t.Errorf("deleted row %s: last delivered image %v, want a delete", id, after)
		}
	}
	if got := last["100"]; got == nil || got["v"] != "old" {
		t.Errorf("row 100 (written before the DDL, updated after): %v", got)
	}
	if seen != 28 {
		t.Errorf("SELECT shows %d rows, want 28", seen)
	}
}
