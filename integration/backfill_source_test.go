package integration

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// openSource opens a streaming mysql source on the shared server.
func openSource(t *testing.T, include, start string, tune func(*mysql.Config)) *mysql.Source {
	t.Helper()
	cfg := mysql.DefaultConfig()
	cfg.Addr, cfg.User, cfg.ServerID, cfg.Start = shared.Addr, "root", nextServerID(), start
	cfg.Include = []string{include}
	if tune != nil {
		tune(cfg)
	}
	s, err := mysql.New("db", cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// testLogger logs through t when FERRY_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FERRY_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// readUntil reads changes until done reports true after a batch, or the
// deadline.
func readUntil(t *testing.T, s ferry.Source, d time.Duration, done func([]ferry.Change) bool) []ferry.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var all []ferry.Change
	for {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d changes: %v", len(all), err)
		}
		all = append(all, b.Changes...)
		if done(all) {
			return all
		}
	}
}

func backfillDone(s *mysql.Source, table string) bool {
	for _, p := range s.Backfills() {
		if p.Table == table && p.State == ferry.BackfillDone {
			return true
		}
	}
	return false
}

// TestBackfillValuesEqualStreamValues: a row backfilled and the same row
// streamed when it was inserted carry identical values, type for type.
func TestBackfillValuesEqualStreamValues(t *testing.T) {
	name, _, start := binlogDB(t, shared, typesTable...)
	src := openSource(t, name+".*", start, nil)
	streamed := readUntil(t, src, 30*time.Second, func(c []ferry.Change) bool { return len(c) >= 2 })
	if err := src.Backfill(context.Background(), ferry.BackfillRequest{Table: name + ".types"}); err != nil {
		t.Fatal(err)
	}
	all := readUntil(t, src, 30*time.Second, func([]ferry.Change) bool { return backfillDone(src, name+".types") })
	var snaps []ferry.Change
	for _, c := range all {
		if c.Op == ferry.OpSnapshot {
			snaps = append(snaps, c)
		}
	}
	if len(snaps) != 2 {
		t.Fatalf("got %d snapshot changes, want 2", len(snaps))
	}
	for i, s := range snaps {
		want := streamed[i].After
		if !reflect.DeepEqual(s.After.Columns, want.Columns) {
			t.Fatalf("columns %v, want %v", s.After.Columns, want.Columns)
		}
		for j, col := range want.Columns {
			if got := s.After.Values[j]; !reflect.DeepEqual(got, want.Values[j]) {
				t.Errorf("row %d column %s: backfill %#v (%T), stream %#v (%T)", i+1, col, got, got, want.Values[j], want.Values[j])
			}
		}
		if !reflect.DeepEqual(s.Key, streamed[i].Key) {
			t.Errorf("key %v, stream %v", s.Key, streamed[i].Key)
		}
	}
}

// TestBackfillWhileWriting backfills 100k rows while another goroutine
// updates, deletes and inserts random rows. In the events, the last one per
// key must equal the table's final row (or be a delete when the row is
// gone), and no snapshot row may come after a streamed change it predates.
func TestBackfillWhileWriting(t *testing.T) {
	const rows = 100_000
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, s VARCHAR(40) NOT NULL)",
		fmt.Sprintf("INSERT INTO t SELECT seq, seq, CONCAT('row-', seq) FROM seq_1_to_%d", rows),
		"CREATE TABLE marker (id INT PRIMARY KEY)")
	src := openSource(t, name+".*", "latest", nil)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { writeRandomly(ctx, t, db, rows) })
	time.Sleep(200 * time.Millisecond)
	if err := src.Backfill(context.Background(), ferry.BackfillRequest{Table: name + ".t", Chunk: 2000, Rate: 25000}); err != nil {
		t.Fatal(err)
	}
	var all []ferry.Change
	all = readUntil(t, src, 3*time.Minute, func([]ferry.Change) bool { return backfillDone(src, name+".t") })
	stop()
	wg.Wait()
	exec1(t, db, "INSERT INTO marker VALUES (1)")
	all = append(all, readUntil(t, src, time.Minute, func(c []ferry.Change) bool {
		return len(c) > 0 && c[len(c)-1].Table == "marker"
	})...)

	checkNoOvertaking(t, all)
	checkFinalState(t, db, all)
}

// writeRandomly changes random rows until ctx ends.
func writeRandomly(ctx context.Context, t *testing.T, db *sql.DB, rows int) {
	next := rows
	for ctx.Err() == nil {
		id := rand.IntN(rows) + 1
		var err error
		switch rand.IntN(10) {
		case 0, 1:
			_, err = db.Exec("DELETE FROM t WHERE id = ?", id)
		case 2:
			next++
			_, err = db.Exec("INSERT INTO t VALUES (?, ?, 'new')", next, next)
		case 3: // several rows in one transaction
			tx, _ := db.Begin()
			for range 5 {
				_, _ = tx.Exec("UPDATE t SET v = v + 1, s = 'tx' WHERE id = ?", rand.IntN(rows)+1)
			}
			err = tx.Commit()
		default:
			_, err = db.Exec("UPDATE t SET v = v + 1, s = CONCAT('u', v) WHERE id = ?", id)
		}
		if err != nil {
			t.Errorf("write: %v", err)
			return
		}
	}
}

// checkNoOvertaking: a snapshot row read at binlog position P must not be
// emitted after a streamed change of its key from a position after P.
func checkNoOvertaking(t *testing.T, all []ferry.Change) {
	t.Helper()
	lastStreamed := map[string]ferry.BinlogCoords{}
	bad := 0
	for _, c := range all {
		key := ferry.KeyText(c.Key)
		if c.Op != ferry.OpSnapshot {
			lastStreamed[key] = c.Binlog
			continue
		}
		if s, ok := lastStreamed[key]; ok && (s.File > c.Binlog.File || s.File == c.Binlog.File && s.Pos > c.Binlog.Pos) {
			bad++
			if bad < 5 {
				t.Errorf("snapshot of key %s (at %s:%d) after a streamed change at %s:%d", key, c.Binlog.File, c.Binlog.Pos, s.File, s.Pos)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d snapshot rows overtook newer streamed changes", bad)
	}
}

// checkFinalState compares the last event per key with the table.
func checkFinalState(t *testing.T, db *sql.DB, all []ferry.Change) {
	t.Helper()
	last := map[string]ferry.Change{}
	snapshots := 0
	for _, c := range all {
		if c.Table == "t" {
			last[ferry.KeyText(c.Key)] = c
			if c.Op == ferry.OpSnapshot {
				snapshots++
			}
		}
	}
	rows, err := db.Query("SELECT id, v, s FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	present := map[string]bool{}
	wrong := 0
	for rows.Next() {
		var id, v int64
		var s string
		if err := rows.Scan(&id, &v, &s); err != nil {
			t.Fatal(err)
		}
		key := strconv.FormatInt(id, 10)
		present[key] = true
		c, ok := last[key]
		want := []any{id, v, s}
		if !ok || c.Op == ferry.OpDelete || !reflect.DeepEqual(c.After.Values, want) {
			if wrong++; wrong < 5 {
				t.Errorf("row %s: table %v, last event %s %v", key, want, c.Op, c.After.Values)
			}
		}
	}
	for key, c := range last {
		if !present[key] && c.Op != ferry.OpDelete {
			if wrong++; wrong < 10 {
				t.Errorf("row %s is gone but its last event is %s", key, c.Op)
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d keys differ from the table (of %d rows, %d snapshot events)", wrong, len(present), snapshots)
	}
	t.Logf("%d rows match; %d snapshot events, %d events in all", len(present), snapshots, len(all))
}
