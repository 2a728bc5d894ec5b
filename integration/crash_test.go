package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// op is one committed row change as the writer made it.
type op struct {
	id   int
	kind string // create, update, delete
	v    int    // the row's v after (create, update) or before (delete)
	c    int    // column c of the row image; noColumn before ADD COLUMN c
}

// noColumn marks an op committed before the table had column c.
const noColumn = -1

// workload commits random inserts, updates and deletes, alone or in
// multi-statement transactions, plus transactions it rolls back, and
// records exactly what was committed, in commit order.
type workload struct {
	db   *sql.DB
	rng  *rand.Rand
	mu   sync.Mutex
	ops  []op
	rows map[int]int // id -> v of live rows; the writer's goroutine only
	next int
	// addedC is the last id created before ALTER TABLE ADD COLUMN c (whose
	// default is 7; rows created later get c = id); 0 while t has no c.
	addedC int
}

func (w *workload) step(t *testing.T) {
	if err := w.try(); err != nil {
		t.Error(err)
	}
}

// addColumn adds column c to t between two transactions.
func (w *workload) addColumn() error {
	if _, err := w.db.Exec("ALTER TABLE t ADD COLUMN c INT NOT NULL DEFAULT 7"); err != nil {
		return fmt.Errorf("add column c: %w", err)
	}
	w.mu.Lock()
	w.addedC = max(w.next, 1)
	w.mu.Unlock()
	return nil
}

// try commits (or rolls back) one random transaction and records what it
// committed.
func (w *workload) try() error {
	tx, err := w.db.Begin()
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	n := 1
	if w.rng.IntN(4) == 0 {
		n = 2 + w.rng.IntN(4)
	}
	var pending []op
	for range n {
		o := w.pick(w.rows)
		pending = append(pending, o)
		if err := apply(tx, o); err != nil {
			_ = tx.Rollback()
			w.undo(pending)
			return fmt.Errorf("%s of row %d: %w", o.kind, o.id, err)
		}
	}
	if w.rng.IntN(10) == 0 {
		w.undo(pending)
		return tx.Rollback() // must never appear downstream
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	w.mu.Lock()
	w.ops = append(w.ops, pending...)
	w.mu.Unlock()
	return nil
}

// undo takes a rolled-back transaction's ops out of the live rows (cheaper
// than copying the rows for every transaction, which made long runs
// quadratic).
func (w *workload) undo(ops []op) {
	for i := len(ops) - 1; i >= 0; i-- {
		switch o := ops[i]; o.kind {
		case "create":
			delete(w.rows, o.id)
		case "update":
			w.rows[o.id]--
		case "delete":
			w.rows[o.id] = o.v
		}
	}
}

// pick chooses the next change against the transaction's view of the rows.
func (w *workload) pick(rows map[int]int) op {
	r := w.rng.IntN(10)
	if len(rows) < 5 || r < 4 {
		w.next++
		rows[w.next] = 0
		return op{id: w.next, kind: "create", v: 0, c: w.columnC(w.next)}
	}
	var id int
	for k := range rows { // random enough for a test
		id = k
		if w.rng.IntN(3) == 0 {
			break
		}
	}
	if r < 8 {
		rows[id]++
		return op{id: id, kind: "update", v: rows[id], c: w.columnC(id)}
	}
	v := rows[id]
	delete(rows, id)
	return op{id: id, kind: "delete", v: v, c: w.columnC(id)}
}

// columnC is the value of column c of row id: noColumn before ADD COLUMN,
// the default 7 for rows that existed then, the id for rows created later.
func (w *workload) columnC(id int) int {
	switch {
	case w.addedC == 0:
		return noColumn
	case id <= w.addedC:
		return 7
	}
	return id
}

func apply(tx *sql.Tx, o op) error {
	var err error
	switch o.kind {
	case "create":
		if o.c != noColumn {
			_, err = tx.Exec("INSERT INTO t (id, v, c) VALUES (?, ?, ?)", o.id, o.v, o.c)
			break
		}
		_, err = tx.Exec("INSERT INTO t (id, v) VALUES (?, ?)", o.id, o.v)
	case "update":
		_, err = tx.Exec("UPDATE t SET v = ? WHERE id = ?", o.v, o.id)
	case "delete":
		_, err = tx.Exec("DELETE FROM t WHERE id = ?", o.id)
	}
	return err
}

// TestKill9LosesNothing kills ferry with SIGKILL again and again while rows
// are written, then checks the receiver against what was committed.
func TestKill9LosesNothing(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'some padding to make rows less tiny')")
	w := &workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}

	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())

	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			w.step(t)
		}
	})
	kills := 10
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range kills {
		p := startFerry(t, cfg)
		time.Sleep(time.Duration(150+rng.IntN(900)) * time.Millisecond)
		p.kill()
		t.Logf("kill %d: %d committed changes so far, %d events received", i+1, len(w.committed()), r.Count())
	}
	stopWriter()
	wg.Wait()

	want := w.committed()
	p := startFerry(t, cfg)
	eventually(t, 60*time.Second, fmt.Sprintf("%d distinct events", len(want)), func() bool {
		return distinct(r.Events()) >= len(want)
	})
	if code := p.stop(); code != 0 {
		t.Fatalf("final ferry exit code %d", code)
	}
	verifyAgainstWorkload(t, r.Events(), want)
	t.Logf("%d committed changes, %d events received (%d duplicates after %d kills)", len(want), r.Count(), r.Count()-len(want), kills)
}

// count returns how many changes were committed so far.
func (w *workload) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ops)
}

func (w *workload) committed() []op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]op(nil), w.ops...)
}

func distinct(events []event.Event) int {
	ids := map[string]bool{}
	for _, e := range events {
		ids[e.ID()] = true
	}
	return len(ids)
}

// verifyAgainstWorkload: duplicates are byte-identical; with duplicates
// removed (first arrival kept), each key's events are exactly its committed
// changes, in commit order; nothing else arrived.
func verifyAgainstWorkload(t *testing.T, events []event.Event, want []op) {
	t.Helper()
	verifyDuplicatesIdentical(t, events)
	first := map[string]bool{}
	perKey := map[int][]op{}
	for _, e := range events {
		if first[e.ID()] {
			continue
		}
		first[e.ID()] = true
		d := decode(t, e)
		o := op{kind: d.Op}
		row := d.After
		if d.Op == "delete" {
			row = d.Before
		}
		o.id, o.v, o.c = int(row["id"].(float64)), int(row["v"].(float64)), noColumn
		if c, ok := row["c"].(float64); ok {
			o.c = int(c)
		}
		perKey[o.id] = append(perKey[o.id], o)
	}
	wantPerKey := map[int][]op{}
	for _, o := range want {
		wantPerKey[o.id] = append(wantPerKey[o.id], o)
	}
	if len(first) != len(want) {
		t.Errorf("%d distinct events, %d committed changes", len(first), len(want))
	}
	for id, ops := range wantPerKey {
		got := perKey[id]
		if fmt.Sprint(got) != fmt.Sprint(ops) {
			t.Errorf("key %d: got %v, committed %v", id, got, ops)
		}
	}
	for id := range perKey {
		if _, ok := wantPerKey[id]; !ok {
			t.Errorf("key %d: events for a key never committed: %v", id, perKey[id])
		}
	}
}
