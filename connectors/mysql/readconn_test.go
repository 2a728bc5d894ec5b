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
	c := &boundaryConn{Conn: client, feed: f, coalesce: coalesce, pause: func(d time.Duration) { pauses = append(pauses, d) }, now: time.Now}
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

// senderModel is the socket as the reader sees it, on the test's clock: the
// server sends rate bytes per second, of which at most buffered wait in the
// receive buffer (beyond that the server is held back); a read takes what
// waits, or blocks until a byte arrives.
type senderModel struct {
	net.Conn
	now            *time.Time
	last           time.Time
	rate, buffered float64 // bytes per second; bytes
	queued         float64
}

func (m *senderModel) Read(p []byte) (int, error) {
	m.queued = min(m.buffered, m.queued+m.rate*m.now.Sub(m.last).Seconds())
	if m.queued < 1 {
		*m.now = m.now.Add(time.Duration((1 - m.queued) / m.rate * float64(time.Second)))
		m.queued = 1
	}
	n := min(len(p), int(m.queued))
	m.queued -= float64(n)
	m.last = *m.now
	return n, nil
}

// TestReadCoalesceDoesNotPauseABacklog: a reader a little faster than the
// sender empties the socket at most reads while it drains a backlog;
// pausing after each such read held the sender to what the receive buffer
// takes per pause (about a quarter of its rate here). Once a window of
// read_coalesce has brought more than busyBytes, reads are not paused, so
// the drain runs at the sender's rate; when the rate falls to a trickle
// the pauses come back and batch it. Time is the test's clock.
func TestReadCoalesceDoesNotPauseABacklog(t *testing.T) {
	const coalesce = 5 * time.Millisecond
	st, out, c, _, _ := deferringFeed(t, coalesce)
	go func() { // the pipeline's Read
		for b := range out {
			st.gate.release(b)
		}
	}()
	clock := time.Unix(1e9, 0)
	sender := &senderModel{now: &clock, last: clock, rate: 80e6, buffered: 64 << 10}
	var pauses int
	c.Conn, c.now = sender, func() time.Time { return clock }
	c.pause = func(d time.Duration) { pauses++; clock = clock.Add(d) }
	buf := make([]byte, 64<<10)
	// drain reads for d of the test's time, handling each read in 20 µs
	// plus its bytes at 100 MB/s, and returns the bytes read.
	drain := func(d time.Duration) (bytes int) {
		t.Helper()
		for end, i := clock.Add(d), 0; clock.Before(end); i++ {
			if err := st.emit(context.Background(), txBatch(i)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			bytes += n
			clock = clock.Add(20*time.Microsecond + time.Duration(float64(n)/100e6*float64(time.Second)))
		}
		return bytes
	}
	drain(20 * time.Millisecond)
	if got := float64(drain(200*time.Millisecond)) / 0.2; got < 0.9*sender.rate {
		t.Fatalf("a backlog sent at %.0f MB/s drained at %.1f MB/s (%d pauses)", sender.rate/1e6, got/1e6, pauses)
	}
	sender.rate = 1.25e6 // 5,000 transactions of 250 bytes per second
	drain(20 * time.Millisecond)
	before := pauses
	drain(100 * time.Millisecond)
	if trickle := pauses - before; trickle < 10 {
		t.Fatalf("%d pauses in 100 ms of a 1.25 MB/s trickle, want one per read_coalesce", trickle)
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
