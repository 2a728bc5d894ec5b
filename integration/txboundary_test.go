package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestSavepointsAndCreateSelectKeepTransactions: statements the server logs
// inside a transaction (SAVEPOINT, ROLLBACK TO, the CREATE TABLE of a
// CREATE TABLE ... SELECT) do not end it: every change carries the
// transaction's GTID with consecutive ordinals, and rows undone by ROLLBACK
// TO are not emitted even when the binlog holds them.
func TestSavepointsAndCreateSelectKeepTransactions(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE m (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=MyISAM")
	inTx(t, db,
		"INSERT INTO t VALUES (1, 1)", "SAVEPOINT a", "INSERT INTO t VALUES (2, 2)",
		"ROLLBACK TO SAVEPOINT a", "INSERT INTO t VALUES (3, 3)")
	// A MyISAM change after the savepoint keeps the undone row 21 in the
	// binlog, followed by ROLLBACK TO.
	inTx(t, db,
		"INSERT INTO t VALUES (20, 1)", "SAVEPOINT a", "INSERT INTO m VALUES (20, 1)", "INSERT INTO t VALUES (21, 1)",
		"ROLLBACK TO SAVEPOINT a", "INSERT INTO t VALUES (22, 1)", "SAVEPOINT b", "INSERT INTO t VALUES (23, 1)")
	inTx(t, db, "SAVEPOINT s", "INSERT INTO m VALUES (30, 1)", "INSERT INTO t VALUES (31, 1)",
		"ROLLBACK TO s", "INSERT INTO t VALUES (32, 1)", "UPDATE t SET v = v + 1 WHERE id = 32")
	exec1(t, db, "CREATE TABLE c (PRIMARY KEY (id)) ENGINE=InnoDB SELECT id, v FROM t ORDER BY id LIMIT 200",
		"CREATE TABLE cm (PRIMARY KEY (id)) ENGINE=MyISAM SELECT id, v FROM t WHERE id > 20")

	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	tables := []string{"t", "m", "c", "cm"}
	want := rowCount(t, db, tables...) + 1 // the update of row 32
	events := waitEvents(t, r, want)
	if len(events) != want {
		t.Fatalf("got %d events, want %d", len(events), want)
	}
	verifyTxIDs(t, events)
	verifyTables(t, db, events, tables...)
	for _, e := range events {
		if d := decode(t, e); d.Table == "t" && (d.PK["id"] == float64(2) || d.PK["id"] == float64(21) || d.PK["id"] == float64(31)) {
			t.Errorf("row undone by ROLLBACK TO emitted: %s %s", e.ID(), e.Data())
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestTransactionBoundariesSurviveKills kills ferry with SIGKILL and SIGTERM
// at random instants while transactions with savepoints, partial rollbacks
// and CREATE TABLE ... SELECT are committed; the delivered events rebuild
// every table exactly as SELECT shows it, under transaction ids.
func TestTransactionBoundariesSurviveKills(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE m (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=MyISAM")
	w := &savepointWorkload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), tables: []string{"t", "m"}}

	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for ctx.Err() == nil && writeErr == nil {
			writeErr = w.step()
		}
	})
	t.Cleanup(func() { stopWriter(); wg.Wait() })
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range 8 {
		p := startFerry(t, cfg)
		time.Sleep(time.Duration(200+rng.IntN(900)) * time.Millisecond)
		if i%2 == 0 {
			p.kill()
		} else if code := p.stop(); code != 0 && code != -1 { // -1: the signal came before Go's handler was installed
			t.Fatalf("SIGTERM exit code %d", code)
		}
		t.Logf("stop %d: %d events received", i+1, r.Count())
	}
	stopWriter()
	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}

	tables := w.tableNames()
	p := startFerry(t, cfg)
	want := rowCount(t, db, tables...)
	eventually(t, 3*time.Minute, "every table rebuilt from the events", func() bool {
		return distinct(r.Events()) >= want && tablesMatch(t, db, r.Events(), tables...) == ""
	})
	if code := p.stop(); code != 0 {
		t.Fatalf("final exit code %d", code)
	}
	events := r.Events()
	verifyDuplicatesIdentical(t, events)
	verifyTxIDs(t, events)
	verifyTables(t, db, events, tables...)
	t.Logf("%d transactions, %d events received, %d distinct", w.txs, len(events), distinct(events))
}

// savepointWorkload commits transactions that set savepoints, roll back to
// them (with MyISAM changes in between, so the undone rows stay in the
// binlog), and now and then copies a table with CREATE TABLE ... SELECT.
type savepointWorkload struct {
	db     *sql.DB
	rng    *rand.Rand
	next   int
	txs    int
	mu     sync.Mutex
	tables []string
}

func (w *savepointWorkload) step() error {
	if w.rng.IntN(40) == 0 {
		// A bounded copy: copying all of t each time made the event count
		// grow with the square of the run's length.
		name := "c" + strconv.Itoa(len(w.tableNames()))
		if _, err := w.db.Exec("CREATE TABLE " + name + " (PRIMARY KEY (id)) ENGINE=InnoDB SELECT id, v FROM t ORDER BY id LIMIT 200"); err != nil {
			return fmt.Errorf("create table ... select: %w", err)
		}
		w.mu.Lock()
		w.tables = append(w.tables, name)
		w.mu.Unlock()
		return nil
	}
	tx, err := w.db.Begin()
	if err != nil {
		return err
	}
	var stmts []string
	insert := func(table string) {
		w.next++
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s VALUES (%d, %d)", table, w.next, w.rng.IntN(100)))
	}
	for range 1 + w.rng.IntN(3) {
		insert("t")
	}
	stmts = append(stmts, "SAVEPOINT sp1", fmt.Sprintf("UPDATE t SET v = v + 1 WHERE id = %d", w.next))
	if w.rng.IntN(2) == 0 {
		insert("m")
	}
	for range 1 + w.rng.IntN(3) {
		insert("t")
	}
	if w.rng.IntN(2) == 0 {
		stmts = append(stmts, "ROLLBACK TO SAVEPOINT sp1")
	}
	insert("t")
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	w.txs++
	if w.rng.IntN(10) == 0 {
		return tx.Rollback()
	}
	return tx.Commit()
}

func (w *savepointWorkload) tableNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.tables)
}

// inTx runs statements in one transaction and commits it.
func inTx(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(s); err != nil {
			_ = tx.Rollback()
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func rowCount(t *testing.T, db *sql.DB, tables ...string) int {
	t.Helper()
	total := 0
	for _, table := range tables {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

// verifyTxIDs: every event's id is its transaction's GTID, '#', and its
// ordinal; a transaction's ordinals are 1..n without a gap, and no insert
// arrives under two different ids.
func verifyTxIDs(t *testing.T, events []event.Event) {
	t.Helper()
	orders := map[string][]int{}
	seen := map[string]bool{}
	createdAs := map[string]string{}
	for _, e := range events {
		if seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		d := decode(t, e)
		if !mariaGTID.MatchString(d.Tx.ID) || e.ID() != d.Tx.ID+"#"+strconv.Itoa(d.Tx.Order) {
			t.Errorf("event %s: tx %+v is not <GTID>#<ordinal>", e.ID(), d.Tx)
		}
		orders[d.Tx.ID] = append(orders[d.Tx.ID], d.Tx.Order)
		if d.Op != "create" {
			continue
		}
		row := fmt.Sprint(d.Table, d.PK) // the tests never insert a key twice
		if prev, ok := createdAs[row]; ok {
			t.Errorf("the insert of %s arrived as %s and %s", row, prev, e.ID())
		}
		createdAs[row] = e.ID()
	}
	for tx, ords := range orders {
		sort.Ints(ords)
		for i, o := range ords {
			if o != i+1 {
				t.Errorf("transaction %s: ordinals %v are not 1..%d", tx, ords, len(ords))
				break
			}
		}
	}
}

// verifyTables rebuilds each (id, v) table from the events, applied in
// binlog order, and compares it with SELECT.
func verifyTables(t *testing.T, db *sql.DB, events []event.Event, tables ...string) {
	t.Helper()
	if diff := tablesMatch(t, db, events, tables...); diff != "" {
		t.Error(diff)
	}
}

// tablesMatch returns "" when the events rebuild the tables, else the first
// difference.
func tablesMatch(t *testing.T, db *sql.DB, events []event.Event, tables ...string) string {
	t.Helper()
	rebuilt := rebuildTables(t, events)
	for _, table := range tables {
		rows, err := db.Query("SELECT id, v FROM " + table + " ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]int{}
		for rows.Next() {
			var id, v int
			if err := rows.Scan(&id, &v); err != nil {
				t.Fatal(err)
			}
			want[id] = v
		}
		rows.Close()
		got := rebuilt[table]
		for id, v := range want {
			if gv, ok := got[id]; !ok || gv != v {
				return fmt.Sprintf("table %s row %d: SELECT v=%d, events give %d (present %v)", table, id, v, gv, ok)
			}
		}
		for id := range got {
			if _, ok := want[id]; !ok {
				return fmt.Sprintf("table %s row %d: in the events, not in SELECT", table, id)
			}
		}
	}
	return ""
}

func rebuildTables(t *testing.T, events []event.Event) map[string]map[int]int {
	t.Helper()
	type change struct {
		seq, ord int
		d        changeData
	}
	var changes []change
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		seq, ord := sourceOrder(t, e.ID())
		changes = append(changes, change{seq, ord, decode(t, e)})
	}
	sort.Slice(changes, func(i, j int) bool {
		return changes[i].seq < changes[j].seq || changes[i].seq == changes[j].seq && changes[i].ord < changes[j].ord
	})
	out := map[string]map[int]int{}
	for _, c := range changes {
		rows := out[c.d.Table]
		if rows == nil {
			rows = map[int]int{}
			out[c.d.Table] = rows
		}
		switch c.d.Op {
		case "delete":
			delete(rows, int(c.d.Before["id"].(float64)))
		default:
			rows[int(c.d.After["id"].(float64))] = int(c.d.After["v"].(float64))
		}
	}
	return out
}
