package integration

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// The mysql source sizes each change once, while buffering it, and hands
// the sum over as Batch.Size, which the pipeline's and the source's own
// memory bounds use instead of sizing every change again. A seeded mix of
// what applications send (single and multi-row statements, updates,
// deletes, updates of the primary key, transactions larger than
// max_tx_buffer, TRUNCATE, bursts that Read merges) must give batches whose Size is exactly the sum of their
// changes' sizes; a Size too small would let more than max_in_flight_bytes
// into memory.
func TestBatchSizeIsTheSumOfItsChanges(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(400), n BIGINT, d DATETIME(3), j JSON)")
	exec1(t, db, "CREATE TABLE done (id INT PRIMARY KEY)")
	// Small batches, so that most are checked apart from their neighbours.
	s := openSource(t, name+".*", start, func(c *mysql.Config) { c.MaxTxBuffer, c.BatchSize = 50, 16 })

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	next := 0
	row := func() string {
		next++
		return fmt.Sprintf("(%d, '%s', %d, '2026-12-04 06:%02d:%02d.%03d', %s)", next, strings.Repeat("x", rng.IntN(200)),
			rng.Int64()-rng.Int64(), rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			[]string{"NULL", `'{"a": [1, 2, {"b": null}]}'`, `'"s"'`}[rng.IntN(3)])
	}
	rows := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = row()
		}
		return strings.Join(out, ", ")
	}
	for range 150 {
		switch k := rng.IntN(20); {
		case k < 8:
			exec1(t, db, "INSERT INTO t VALUES "+row())
		case k < 12:
			exec1(t, db, "INSERT INTO t VALUES "+rows(2+rng.IntN(20)))
		case k < 14:
			exec1(t, db, fmt.Sprintf("UPDATE t SET n = n DIV 3, v = CONCAT(v, 'u') WHERE id %% %d = 0", 2+rng.IntN(5)))
		case k < 15:
			// A new primary key: the source emits the old key's delete too.
			exec1(t, db, fmt.Sprintf("UPDATE t SET id = id + 1000000 WHERE id %% %d = 2 AND id < 1000000", 3+rng.IntN(5)))
		case k < 17:
			exec1(t, db, fmt.Sprintf("DELETE FROM t WHERE id %% %d = 1 LIMIT 7", 3+rng.IntN(5)))
		case k < 19:
			bigTransaction(t, db, 60+rng.IntN(60), rows)
		default:
			exec1(t, db, "TRUNCATE TABLE t")
		}
	}
	exec1(t, db, "INSERT INTO done VALUES (1)")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var batches, changes, truncates int
	for finished := false; !finished; {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d batches: %v", batches, err)
		}
		if len(b.Changes) == 0 {
			continue
		}
		batches++
		changes += len(b.Changes)
		if want := ferry.BatchSize(b.Changes); b.Size != want {
			t.Fatalf("batch %d of %d changes (first %s, %v): Size %d, the changes' sizes add up to %d",
				batches, len(b.Changes), b.Changes[0].ID, b.Changes[0].Op, b.Size, want)
		}
		for _, c := range b.Changes {
			finished = finished || c.Table == "done"
			if c.Op == ferry.OpTruncate {
				truncates++
			}
		}
	}
	t.Logf("%d changes (%d truncates) in %d batches, each sized right", changes, truncates, batches)
}

// bigTransaction inserts n rows in one transaction, in statements of ten.
func bigTransaction(t *testing.T, db *sql.DB, n int, rows func(int) string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for left := n; left > 0; left -= 10 {
		if _, err := tx.Exec("INSERT INTO t VALUES " + rows(min(left, 10))); err != nil {
			_ = tx.Rollback()
			t.Fatalf("insert in a transaction: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}
