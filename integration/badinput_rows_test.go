package integration

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestPrimaryKeyChangingUpdate: an UPDATE that changes the primary key
// gives the old key a delete event (id: the update's + "/old-key") ahead
// of the update, whose key is the new one; an UPDATE keeping its key gives
// no delete; replays see the same changes.
func TestPrimaryKeyChangingUpdate(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (a INT, b INT, v VARCHAR(10), PRIMARY KEY (a, b))",
		"INSERT INTO t VALUES (1, 1, 'x')",
		"UPDATE t SET b = 2, v = 'y' WHERE a = 1", // key (1,1) -> (1,2)
		"UPDATE t SET v = 'z' WHERE a = 1")        // key unchanged: no delete
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	events := waitEvents(t, r, 4)
	p.stop()
	// The old key's delete and the update have different partition keys,
	// so a sink may receive them in either order: look them up by id.
	byID := map[string]changeData{}
	subjects := map[string]string{}
	for _, e := range events {
		byID[e.ID()], subjects[e.ID()] = decode(t, e), e.Subject()
	}
	var update, del string
	for id, d := range byID {
		if d.Op == "update" && d.Before["b"] == float64(1) {
			update = id
		}
		if strings.HasSuffix(id, "/old-key") {
			del = id
		}
	}
	if update == "" || del != update+"/old-key" {
		t.Fatalf("want an update from key (1,1) and a delete with its id + /old-key; got %v", subjects)
	}
	if d := byID[del]; d.Op != "delete" || subjects[del] != "1/1" || d.Before["b"] != float64(1) || d.After != nil {
		t.Errorf("old-key delete: op %s subject %s before %v after %v", d.Op, subjects[del], d.Before, d.After)
	}
	if d := byID[update]; subjects[update] != "1/2" || d.After["b"] != float64(2) {
		t.Errorf("key-changing update: subject %s after %v", subjects[update], d.After)
	}
	if n := len(byID); n != 4 {
		t.Errorf("%d events, want create, old-key delete, update, update (the last keeps its key: no delete)", n)
	}
	// A replay of the same range gives the same ids.
	code, out, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start, "--dry-run")
	if code != 0 || !strings.Contains(out, "4 change") {
		t.Fatalf("replay dry run: exit %d\n%s%s", code, out, errOut)
	}
}

// TestLatin1BytesAsTheServerConvertsThem: every byte value stored in a
// latin1 column (a legacy table's typical text) arrives as the very text
// the server's own CONVERT(... USING utf8mb4) gives, as valid UTF-8 JSON;
// the same bytes in a VARBINARY column arrive as base64, untouched.
func TestLatin1BytesAsTheServerConvertsThem(t *testing.T) {
	name, db, start := binlogDB(t, shared)
	var all strings.Builder
	for b := 0; b < 256; b++ {
		fmt.Fprintf(&all, "%02X", b)
	}
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, l VARCHAR(300) CHARACTER SET latin1, bin VARBINARY(300))",
		fmt.Sprintf("INSERT INTO t VALUES (1, UNHEX('%s'), UNHEX('%s'))", all.String(), all.String()))
	var want string
	if err := db.QueryRow("SELECT CONVERT(l USING utf8mb4) FROM t WHERE id = 1").Scan(&want); err != nil {
		t.Fatal(err)
	}
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	events := waitEvents(t, r, 1)
	p.stop()
	d := decode(t, events[0]) // the receiver parsed the JSON: it is valid
	if got := d.After["l"]; got != want {
		t.Errorf("latin1 bytes arrived as %q, the server converts them to %q", got, want)
	}
	if got, _ := d.After["bin"].(string); got == "" || strings.ContainsRune(got, '\uFFFD') {
		t.Errorf("VARBINARY arrived as %q, want base64", got)
	}
}

// TestTableDroppedWhileStreamed: rows of a table written before it is
// dropped still arrive (each row event is decoded with the metadata the
// server wrote beside it), other tables go on, and a table re-created
// under the same name with other columns is decoded with the new ones.
func TestTableDroppedWhileStreamed(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, old_col VARCHAR(10))", "CREATE TABLE u (id INT PRIMARY KEY)")
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	exec1(t, db, "INSERT INTO t VALUES (1, 'before')", "DROP TABLE t", "INSERT INTO u VALUES (1)",
		"CREATE TABLE t (id INT PRIMARY KEY, new_col INT)", "INSERT INTO t VALUES (2, 42)")
	// In commit order: rows of different tables (partition keys) may reach
	// an HTTP sink concurrently, so the receiver's order need not be it.
	events := sortBySource(t, waitEvents(t, r, 3))
	if p.stop() != 0 {
		t.Fatalf("ferry failed:\n%s", tailLines(p.stderr.String(), 10))
	}
	first, second, third := decode(t, events[0]), decode(t, events[1]), decode(t, events[2])
	if first.Table != "t" || first.After["old_col"] != "before" {
		t.Errorf("row written before the drop: %+v", first.After)
	}
	if second.Table != "u" {
		t.Errorf("the other table's row: %s %+v", second.Table, second.After)
	}
	if _, old := third.After["old_col"]; third.Table != "t" || third.After["new_col"] != float64(42) || old {
		t.Errorf("row of the re-created table: %+v", third.After)
	}
}

// TestRowLargerThanSinkLimit: a row whose event exceeds EventBridge's
// 256 KB entry limit is dead-lettered for that sink with the reason, the
// HTTP sink still gets it, and the rows after it reach both.
func TestRowLargerThanSinkLimit(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, body MEDIUMTEXT)")
	eb := ebfake.New()
	ebSrv := httptest.NewServer(eb)
	defer ebSrv.Close()
	r := receiver.New()
	dir := t.TempDir()
	base := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	extra := filepath.Join(dir, "eb.yaml")
	if err := os.WriteFile(extra, []byte(fmt.Sprintf(`defaults: {to: [recv, eb]}
sinks:
  eb: {type: eventbridge, region: us-east-1, endpoint: %s, access_key_id: AKIDTEST, secret_access_key: test-secret}
`, ebSrv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	exec1(t, db, "INSERT INTO t VALUES (1, REPEAT('x', 300000))", "INSERT INTO t VALUES (2, 'small')")
	p := startFerryArgs(t, "run", "-c", base, "-c", extra)
	waitEvents(t, r, 2)
	eventually(t, 30*time.Second, "the small row at EventBridge", func() bool { return len(eb.Accepted()) == 1 })
	if p.stop() != 0 {
		t.Fatalf("ferry failed:\n%s", tailLines(p.stderr.String(), 10))
	}
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "-c", base, "-c", extra)
	if code != 0 || !strings.Contains(out, "1 dead letter(s)") || !strings.Contains(out, "256 KB") {
		t.Fatalf("dlq list: exit %d\n%s%s", code, out, errOut)
	}
}
