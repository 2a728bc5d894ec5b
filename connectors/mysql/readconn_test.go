package mysql

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// deferringFeed is a feed armed on a fresh stream that defers its batches,
// as a live connection's is, and a boundaryConn reading from the returned
// pipe end.
func deferringFeed(t *testing.T, coalesce time.Duration) (*stream, chan ferry.Batch, *boundaryConn, net.Conn, *[]time.Duration) {
	t.Helper()
	st, out := testMySQLStream(t, "")
	f := newFeed("mysql")
	f.arm(context.Background(), st)
	f.running = true // as after go-mysql's first event
	server, client := net.Pipe()
	t.Cleanup(func() { server.Close(); client.Close() })
	var pauses []time.Duration
	c := &boundaryConn{Conn: client, feed: f, coalesce: coalesce, pause: func(d time.Duration) { pauses = append(pauses, d) }}
	return st, out, c, server, &pauses
}

func txBatch(i int) ferry.Batch {
	id := fmt.Sprint(i)
	return ferry.Batch{Changes: []ferry.Change{{ID: id, Op: ferry.OpCreate, DB: "shop", Table: "t"}}, Checkpoint: ferry.Position("pos-" + id)}
}

// readOne reads through c, into 8 bytes, one byte server writes: a read
// that empties the socket.
func readOne(t *testing.T, c *boundaryConn, server net.Conn) {
	t.Helper()
	readInto(t, c, server, 8)
}

// readInto reads one byte server writes through c into a buffer of n bytes.
func readInto(t *testing.T, c *boundaryConn, server net.Conn, n int) {
	t.Helper()
	go server.Write([]byte{1}) //nolint:errcheck // the pipe is closed at cleanup
	if _, err := c.Read(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
}

// Transactions committed between two reads of the connection reach the
// pipeline together, in order, before the next read, and only a read that
// follows a hand-over pauses, for what is left of read_coalesce.
func TestReadBoundaryHandsOverCommittedTransactions(t *testing.T) {
	st, out, c, server, pauses := deferringFeed(t, 50*time.Millisecond)
	ctx := context.Background()
	readOne(t, c, server) // nothing to hand over: no pause
	for i := range 3 {
		if err := st.emit(ctx, txBatch(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != 0 {
		t.Fatalf("%d batches sent before the read boundary", len(out))
	}
	readOne(t, c, server)
	if len(out) != 3 {
		t.Fatalf("%d batches sent at the read boundary, want 3", len(out))
	}
	for i := range 3 {
		if b := <-out; string(b.Checkpoint) != fmt.Sprint("pos-", i) {
			t.Fatalf("batch %d has checkpoint %s: out of order", i, b.Checkpoint)
		}
	}
	readOne(t, c, server) // nothing new: no pause
	if len(*pauses) != 1 || (*pauses)[0] <= 0 || (*pauses)[0] > 50*time.Millisecond {
		t.Fatalf("pauses %v, want one within read_coalesce, after the hand-over", *pauses)
	}
	// A read that filled its buffer (a backlog) is followed by none.
	readInto(t, c, server, 1)
	if err := st.emit(ctx, txBatch(3)); err != nil {
		t.Fatal(err)
	}
	readOne(t, c, server)
	if len(out) != 1 || len(*pauses) != 1 {
		t.Fatalf("%d batches sent, pauses %v after a full read, want 1 and no new pause", len(out), *pauses)
	}
}

// A full batch_size goes out without waiting for a read boundary: a large
// backlog read is not held in memory until the connection is read again.
func TestDeferredBatchesGoOutAtBatchSize(t *testing.T) {
	st, out, _, _, _ := deferringFeed(t, 0)
	st.cfg = &Config{BatchSize: 4}
	for i := range 5 {
		if err := st.emit(context.Background(), txBatch(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != 4 || len(st.deferred) != 1 {
		t.Fatalf("%d sent and %d deferred, want 4 and 1", len(out), len(st.deferred))
	}
}

// A backfill chunk, which a backfill's goroutine may emit while the
// connection waits for events, goes out at once and after the transactions
// deferred before it (the snapshot state must not overtake older changes).
func TestBackfillChunkFlushesDeferredTransactions(t *testing.T) {
	st, out, _, _, _ := deferringFeed(t, time.Millisecond)
	ctx := context.Background()
	if err := st.emit(ctx, txBatch(0)); err != nil {
		t.Fatal(err)
	}
	w := st.openWindow(&snapshotPlan{db: "shop", table: "t", keyCols: []string{"id"}, primary: true}, &job{Table: "shop.t"})
	row := snapRow{id: "snapshot/1", key: ferry.Row{Columns: []string{"id"}, Values: []any{int64(1)}}}
	if err := st.deliverChunk(ctx, w, &chunk{at: st.readPos, rows: []snapRow{row}, final: true}); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d batches sent, want the deferred transaction and the chunk", len(out))
	}
	if b := <-out; len(b.Changes) != 1 || b.Changes[0].Op != ferry.OpCreate {
		t.Fatalf("first batch %+v, want the deferred insert", b.Changes)
	}
	if b := <-out; len(b.Changes) != 1 || b.Changes[0].Op != ferry.OpSnapshot {
		t.Fatalf("second batch %+v, want the chunk's row", b.Changes)
	}
}

// Only the syncer's first connection, the dump, hands batches over: go-mysql
// reads the connection its Close dials for KILL on another goroutine.
func TestBoundaryDialerWrapsOnlyTheDumpConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	dial := boundaryDialer(&net.Dialer{}, newFeed("mysql"), time.Millisecond)
	for i, want := range []bool{true, false, false} {
		c, err := dial(context.Background(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, wrapped := c.(*boundaryConn)
		c.Close()
		if wrapped != want {
			t.Errorf("connection %d: boundary %v, want %v", i, wrapped, want)
		}
	}
}

func TestReadCoalesceBounds(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		ok bool
	}{{0, true}, {5 * time.Millisecond, true}, {maxReadCoalesce, true}, {-time.Millisecond, false}, {maxReadCoalesce + 1, false}} {
		cfg := DefaultConfig()
		cfg.Addr, cfg.User, cfg.ServerID, cfg.ReadCoalesce = "127.0.0.1:3306", "ferry", 1, c.d
		err := cfg.Validate()
		if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), "read_coalesce")) {
			t.Errorf("read_coalesce %v: %v", c.d, err)
		}
	}
}
