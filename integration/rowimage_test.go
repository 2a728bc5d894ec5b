package integration

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestMinimalAndNoblobRowImages: sessions that set binlog_row_image to
// MINIMAL or NOBLOB (a FULL global setting cannot prevent it) give events
// whose key comes from the before image, whose absent columns are absent
// (never null), that invent no delete, and whose present values equal
// SELECT.
func TestMinimalAndNoblobRowImages(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20) DEFAULT 'dflt', b BLOB)",
		"INSERT INTO t VALUES (1, 1, 'one', 'blob-1'), (2, 2, 'two', 'blob-2'), (3, 3, NULL, 'blob-3')")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	session := func(stmts ...string) {
		t.Helper()
		for _, s := range stmts {
			if _, err := conn.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	session("SET SESSION binlog_row_image = 'MINIMAL'",
		"UPDATE t SET v = 10 WHERE id = 1",
		"DELETE FROM t WHERE id = 2",
		"INSERT INTO t (id, v) VALUES (4, 4)",
		"UPDATE t SET id = 30 WHERE id = 3",
		"SET SESSION binlog_row_image = 'NOBLOB'",
		"UPDATE t SET note = 'uno' WHERE id = 1",
		"UPDATE t SET b = 'blob-1b' WHERE id = 1")

	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	events := sortBySource(t, waitEvents(t, r, 9))
	type got struct{ op, key, before, after string }
	var gots []got
	last := map[string]map[string]any{} // key -> its last after image
	for _, e := range events[3:] {      // after the three full-image inserts
		d := decode(t, e)
		gots = append(gots, got{d.Op, fmt.Sprint(d.PK["id"]), columnsOf(d.Before), columnsOf(d.After)})
		last[fmt.Sprint(d.PK["id"])] = d.After
	}
	for _, after := range last {
		checkAgainstSelect(t, db, after)
	}
	want := []got{
		{"update", "1", "id", "v"},                  // MINIMAL: key only before, changed columns after
		{"delete", "2", "id", ""},                   // MINIMAL: key only
		{"create", "4", "", "id v"},                 // MINIMAL: an insert logs the columns it names
		{"delete", "3", "id", ""},                   // the old key of a key-changing update
		{"update", "30", "id", "id"},                // its new key
		{"update", "1", "id note v", "id note v"},   // NOBLOB: the blob left out
		{"update", "1", "id note v", "b id note v"}, // NOBLOB: a changed blob is logged
	}
	if fmt.Sprint(gots) != fmt.Sprint(want) {
		t.Errorf("events (op key before after):\n got %v\nwant %v", gots, want)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// columnsOf lists a row's columns, sorted.
func columnsOf(row map[string]any) string {
	cols := make([]string, 0, len(row))
	for c := range row {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	return strings.Join(cols, " ")
}

// checkAgainstSelect compares the columns a row's last after image holds
// with what SELECT returns for it.
func checkAgainstSelect(t *testing.T, db *sql.DB, after map[string]any) {
	t.Helper()
	id, ok := after["id"].(float64)
	if !ok {
		return // deleted
	}
	var v int
	var note sql.NullString
	var b []byte
	if err := db.QueryRow("SELECT v, note, b FROM t WHERE id = ?", int(id)).Scan(&v, &note, &b); err != nil {
		t.Fatalf("select row %v: %v", id, err)
	}
	if x, ok := after["v"]; ok && x != float64(v) {
		t.Errorf("row %v: v %v, SELECT %d", id, x, v)
	}
	if x, ok := after["note"]; ok && ((x == nil) != !note.Valid || note.Valid && x != note.String) {
		t.Errorf("row %v: note %v, SELECT %v", id, x, note)
	}
	if x, ok := after["b"]; ok && x != base64.StdEncoding.EncodeToString(b) {
		t.Errorf("row %v: b %v, SELECT %q", id, x, b)
	}
}
