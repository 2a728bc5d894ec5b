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
}

// workload commits random inserts, updates and deletes, alone or in
// multi-statement transactions, plus transactions it rolls back, and
// records exactly what was committed, in commit order.
type workload struct {
	db   *sql.DB
	rng  *rand.Rand
	mu   sync.Mutex
	ops  []op
	rows map[int]int // id -> v of live rows
	next int
}

func (w *workload) step(t *testing.T) {
	tx, err := w.db.Begin()
	if err != nil {
		t.Error(err)
		return
	}
	n := 1
	if w.rng.IntN(4) == 0 {
		n = 2 + w.rng.IntN(4)
	}
	rows := maps(w.rows)
	var pending []op
	for range n {
		o := w.pick(rows)
		if err := apply(tx, o); err != nil {
			t.Error(err)
			_ = tx.Rollback()
			return
		}
		pending = append(pending, o)
	}
	if w.rng.IntN(10) == 0 {
		_ = tx.Rollback() // must never appear downstream
		return
	}
	if err := tx.Commit(); err != nil {
		t.Error(err)
		return
	}
	w.mu.Lock()
	w.ops = append(w.ops, pending...)
	w.rows = rows
	w.mu.Unlock()
}

func maps(m map[int]int) map[int]int {
	out := make(map[int]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// pick chooses the next change against the transaction's view of the rows.
func (w *workload) pick(rows map[int]int) op {
	r := w.rng.IntN(10)
	if len(rows) < 5 || r < 4 {
		w.next++
		rows[w.next] = 0
		return op{id: w.next, kind: "create", v: 0}
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
		return op{id: id, kind: "update", v: rows[id]}
	}
	v := rows[id]
	delete(rows, id)
	return op{id: id, kind: "delete", v: v}
}

func apply(tx *sql.Tx, o op) error {
	var err error
	switch o.kind {
	case "create":
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
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'some padding to make rows less tiny')")
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
	first := map[string]event.Event{}
	perKey := map[int][]op{}
	for _, e := range events {
		if prev, dup := first[e.ID()]; dup {
			if string(prev.Data()) != string(e.Data()) || prev.Type() != e.Type() || !prev.Time().Equal(e.Time()) {
				t.Errorf("duplicate %s differs:\n%s\n%s", e.ID(), prev.Data(), e.Data())
			}
			continue
		}
		first[e.ID()] = e
		d := decode(t, e)
		o := op{kind: d.Op}
		row := d.After
		if d.Op == "delete" {
			row = d.Before
		}
		o.id, o.v = int(row["id"].(float64)), int(row["v"].(float64))
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
