package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// With read_coalesce at its maximum and heartbeats far apart, a lone change
// still arrives (the transactions deferred to the connection's next read are
// handed over before it blocks, not at the next event), and a burst of small
// transactions arrives whole, in commit order, several to a batch.
func TestReadCoalesceDeliversEveryTransactionInOrder(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	s := openSource(t, name+".t", start, func(c *mysql.Config) {
		c.ReadCoalesce, c.Heartbeat = 100*time.Millisecond, 60*time.Second
	})
	exec1(t, db, "INSERT INTO t VALUES (0, 'lone')")
	// Well before the next heartbeat: nothing else is written meanwhile.
	got := readUntil(t, s, 20*time.Second, func(c []ferry.Change) bool { return len(c) == 1 })
	if got[0].After.Values[0] != int64(0) {
		t.Fatalf("first change %v, want the lone insert", got[0].After)
	}

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	const n = 300
	// The inserter reports its error after the reading below, and the test
	// waits for it even when it fails early (no t.Errorf after the test).
	var inserting sync.WaitGroup
	var insertErr error
	inserting.Go(func() {
		for i := 1; i <= n && insertErr == nil; i++ {
			if _, err := db.Exec(fmt.Sprintf("INSERT INTO t VALUES (%d, 'v%d')", i, i)); err != nil {
				insertErr = fmt.Errorf("insert %d: %w", i, err)
			}
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
	})
	t.Cleanup(inserting.Wait)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []int64
	var batches, several int
	last := ""
	for len(ids) < n {
		b, err := s.Read(ctx)
		if err != nil {
			inserting.Wait()
			t.Fatalf("Read after %d changes: %v (inserter: %v)", len(ids), err, insertErr)
		}
		if len(b.Changes) == 0 {
			continue
		}
		batches++
		if len(b.Changes) > 1 {
			several++
		}
		if cp := string(b.Checkpoint); cp == last {
			t.Fatalf("batch %d repeats the checkpoint %s", batches, cp)
		} else {
			last = cp
		}
		for _, c := range b.Changes {
			ids = append(ids, c.After.Values[0].(int64))
		}
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("change %d is row %d, want %d (order: %s...)", i, id, i+1, strconv.Quote(fmt.Sprint(ids[:min(len(ids), 20)])))
		}
	}
	if several == 0 {
		t.Fatalf("%d transactions committed within 100ms of each other arrived in %d batches of one", n, batches)
	}
	t.Logf("%d transactions in %d batches (%d of several)", n, batches, several)
}
