package integration

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestReplayRepeatsTheStream: `ferry replay` of a range emits exactly the
// events the live stream emitted for it (same ids, same data), restricted
// to --table when given, and leaves the source's checkpoint alone.
func TestReplayRepeatsTheStream(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE b (id INT PRIMARY KEY, v INT)")
	for i := 1; i <= 20; i++ {
		exec1(t, db, fmt.Sprintf("INSERT INTO a VALUES (%d, 'a%d')", i, i), fmt.Sprintf("INSERT INTO b VALUES (%d, %d)", i, i))
	}
	exec1(t, db, "UPDATE a SET v = 'changed' WHERE id <= 5", "DELETE FROM b WHERE id > 15",
		"BEGIN", "INSERT INTO a VALUES (100, 'tx')", "UPDATE b SET v = v * 2", "COMMIT")
	mid := binlogPos(t, shared)
	// Binlog times have whole seconds: the changes after the cut happen in
	// a later second than every change before it.
	time.Sleep(1100 * time.Millisecond)
	cut := time.Now().UTC().Truncate(time.Second).Add(-time.Nanosecond)
	exec1(t, db, "INSERT INTO a VALUES (200, 'after')", "INSERT INTO b VALUES (200, 200)")
	const beforeMid = 40 + 5 + 5 + 1 + 15 // inserts, updates, deletes, the transaction
	const all = beforeMid + 2

	live := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, live)}.yaml(t, dir)
	p := startFerry(t, cfg)
	streamed := sortBySource(t, waitEvents(t, live, all))
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exit %d", code)
	}
	_, cpBefore, _ := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db")

	replay := func(t *testing.T, args ...string) []event.Event {
		t.Helper()
		r := receiver.New()
		rcfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
		code, out, errOut := runFerry(t, time.Minute, append([]string{"replay", "-c", rcfg, "--source", "db", "--from", start}, args...)...)
		if code != 0 || !strings.Contains(errOut, "replay of db from "+start) {
			t.Fatalf("replay %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, tailLines(errOut, 10))
		}
		return sortBySource(t, r.Events())
	}
	same := func(t *testing.T, got, want []event.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("replayed %d events, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID() != want[i].ID() || got[i].Type() != want[i].Type() || !reflect.DeepEqual(got[i].Data(), want[i].Data()) {
				t.Fatalf("event %d: replay %s %s %s\nstream %s %s %s", i, got[i].ID(), got[i].Type(), got[i].Data(),
					want[i].ID(), want[i].Type(), want[i].Data())
			}
		}
	}
	t.Run("until position", func(t *testing.T) {
		same(t, replay(t, "--until", mid), streamed[:beforeMid])
	})
	t.Run("until time", func(t *testing.T) {
		same(t, replay(t, "--until", cut.Format(time.RFC3339Nano)), streamed[:beforeMid])
	})
	t.Run("to the end, one table", func(t *testing.T) {
		var want []event.Event
		for _, e := range streamed {
			if strings.Contains(e.Type(), "."+name+".b.") {
				want = append(want, e)
			}
		}
		same(t, replay(t, "--table", name+".b"), want)
	})
	t.Run("by the running ferry", func(t *testing.T) {
		r := receiver.New()
		adminAddr := freeAddr(t)
		rcfg := pipelineConfig{server: shared, db: name, start: "latest", url: receiver.Start(t, r), admin: adminAddr}.yaml(t, t.TempDir())
		p := startFerryReady(t, rcfg, adminAddr)
		code, _, errOut := runFerry(t, time.Minute, "replay", "-c", rcfg, "--source", "db", "--from", start, "--until", mid)
		if code != 0 || !strings.Contains(errOut, "replay of db from "+start) {
			t.Fatalf("replay through the running ferry: exit %d\n%s", code, tailLines(errOut, 10))
		}
		same(t, sortBySource(t, r.Events()), streamed[:beforeMid])
		if code := p.stop(); code != 0 {
			t.Fatalf("ferry run exit %d", code)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		code, out, _ := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start, "--until", mid, "--dry-run")
		if code != 0 || !strings.Contains(out, fmt.Sprintf("%d change(s)", beforeMid)) ||
			!regexp.MustCompile(name+`\.a\s+21\s+5\s+0\n`).MatchString(out) || !regexp.MustCompile(name+`\.b\s+20\s+15\s+5\n`).MatchString(out) {
			t.Fatalf("dry run: exit %d\n%s", code, out)
		}
	})
	if _, cpAfter, _ := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db"); cpAfter != cpBefore {
		t.Errorf("replays moved the source checkpoint: %q -> %q", cpBefore, cpAfter)
	}
}

// TestReplayOfPurgedRange: a range the server no longer has fails with a
// clear message, not an empty replay.
func TestReplayOfPurgedRange(t *testing.T) {
	srv, err := mariadbtest.Start(context.Background(), mariadbtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	old := binlogPos(t, srv)
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)", "FLUSH BINARY LOGS")
	var file string
	var pos int64
	var x, y any
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &x, &y); err != nil {
		t.Fatal(err)
	}
	// MariaDB keeps a binlog until its binlog checkpoint passed; purge until
	// the first file is gone.
	eventually(t, 30*time.Second, "the first binlog purged", func() bool {
		exec1(t, db, "PURGE BINARY LOGS TO '"+file+"'")
		var first string
		var size any
		if err := db.QueryRow("SHOW BINARY LOGS").Scan(&first, &size); err != nil {
			t.Fatal(err)
		}
		return first == file
	})
	cfg := pipelineConfig{server: srv, db: name, start: "latest", url: "http://127.0.0.1:1/"}.yaml(t, t.TempDir())
	code, _, errOut := runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", old)
	if code != 1 || !strings.Contains(errOut, "the replay range starting at "+old+" is no longer in the server's binlogs (purged") {
		t.Fatalf("replay of a purged range: exit %d, want 1 naming the purge; stderr:\n%s", code, tailLines(errOut, 5))
	}
}
