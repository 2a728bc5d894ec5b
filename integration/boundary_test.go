package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestPositionsInsideATransactionAreRefused: `ferry replay --from`,
// `ferry checkpoint set` and `start:` at a position inside a transaction, or
// at an offset that is no event, are refused (exit 1) naming the
// transaction's first position; that position replays the transaction.
func TestPositionsInsideATransactionAreRefused(t *testing.T) {
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	before := binlogPos(t, shared)
	inTx(t, db, "INSERT INTO t VALUES (1)", "SAVEPOINT a", "INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
	file, _, _ := strings.Cut(before, ":")
	var txStart, rowsAt, savepointAt int
	rows, err := shared.DB(t, "").Query("SHOW BINLOG EVENTS IN '" + file + "' FROM " + strings.TrimPrefix(before, file+":"))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var log, typ, info string
		var pos, serverID, end int
		if err := rows.Scan(&log, &pos, &typ, &serverID, &end, &info); err != nil {
			t.Fatal(err)
		}
		switch {
		case typ == "Gtid" && txStart == 0:
			txStart = pos
		case strings.HasPrefix(typ, "Write_rows") && rowsAt == 0:
			rowsAt = pos
		case typ == "Query" && strings.HasPrefix(info, "SAVEPOINT"):
			savepointAt = pos
		}
	}
	rows.Close()
	if txStart == 0 || rowsAt == 0 || savepointAt == 0 {
		t.Fatalf("events not found: gtid %d rows %d savepoint %d", txStart, rowsAt, savepointAt)
	}
	at := func(pos int) string { return fmt.Sprintf("%s:%d", file, pos) }
	want := "is inside a transaction, which begins at " + at(txStart)

	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: before, url: receiver.Start(t, r)}.yaml(t, dir)
	for _, pos := range []int{rowsAt, savepointAt} {
		code, out, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", at(pos))
		if code != 1 || !strings.Contains(errOut, at(pos)+" "+want) {
			t.Errorf("replay --from %s: exit %d\nstdout: %s\nstderr: %s", at(pos), code, out, tailLines(errOut, 3))
		}
		code, out, errOut = runFerry(t, time.Minute, "checkpoint", "set", "-c", cfg, "--source", "db", at(pos))
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("checkpoint set %s: exit %d\nstdout: %s\nstderr: %s", at(pos), code, out, tailLines(errOut, 3))
		}
	}
	code, _, errOut := runFerry(t, time.Minute, "checkpoint", "set", "-c", cfg, "--source", "db", at(txStart+1))
	if code != 1 || !strings.Contains(errOut, "is not the start of an event") || !strings.Contains(errOut, "begins at "+at(txStart)) {
		t.Errorf("checkpoint set at no event: exit %d\n%s", code, tailLines(errOut, 3))
	}
	if _, out, _ := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db"); !strings.Contains(out, "no checkpoint") {
		t.Errorf("a refused checkpoint set changed the checkpoint: %s", out)
	}
	inside := pipelineConfig{server: shared, db: name, start: at(rowsAt), url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, inside)
	if code := p.wait(30 * time.Second); code != 1 || !strings.Contains(p.stderr.String(), want) {
		t.Errorf("start inside a transaction: exit %d\n%s", code, tailLines(p.stderr.String(), 3))
	}

	code, out, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", at(txStart))
	if code != 0 || r.Count() != 3 {
		t.Fatalf("replay --from the transaction's start: exit %d, %d events\nstdout: %s\nstderr: %s", code, r.Count(), out, tailLines(errOut, 5))
	}
}
