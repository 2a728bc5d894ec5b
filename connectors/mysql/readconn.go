package mysql

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// maxReadCoalesce bounds read_coalesce: it is added to a change's latency,
// and a longer pause would only fill the socket's buffer.
const maxReadCoalesce = 100 * time.Millisecond

// boundaryConn is a binlog connection as go-mysql reads it. go-mysql reads
// the socket only when it has handled every event it had buffered, so each
// read is a boundary: before it, the stream hands the transactions it
// committed since the last one to the pipeline together, one wake-up of the
// pipeline's reader for all of them instead of one per transaction.
//
// When it handed some over and its last read had emptied the socket, the
// connection also waits until coalesce has passed since that read: at a
// steady trickle of small transactions, those committed meanwhile then
// arrive in one read and cross the pipeline as one batch (one transform, one
// sink Write, one produce request), which costs a fraction of the same work
// per transaction (issue 18). A change waits at most coalesce longer; a lone
// change after a quiet spell, or a backlog (whose reads fill the buffer),
// not at all.
//
// Read is called only by go-mysql's reading goroutine (and, before it
// starts, by the goroutine that set the dump up), never concurrently.
type boundaryConn struct {
	net.Conn
	feed     *feed
	coalesce time.Duration
	last     time.Time // when the socket was last read
	// drained: the last read took less than it could, so the socket held
	// nothing more then. A backlog's reads fill the buffer, and never pause.
	drained bool
	pause   func(time.Duration) // time.Sleep; a test records the pauses
}

func (c *boundaryConn) Read(p []byte) (int, error) {
	handed, err := c.feed.atReadBoundary()
	if err != nil {
		return 0, err
	}
	if handed && c.drained && c.coalesce > 0 {
		if d := c.coalesce - time.Since(c.last); d > 0 {
			c.pause(d)
		}
	}
	n, err := c.Conn.Read(p)
	c.last, c.drained = time.Now(), n < len(p)
	return n, err
}

// boundaryDialer dials a syncer's connections. The first is the binlog dump
// connection, which hands f's transactions over at each read boundary; the
// others are plain: go-mysql's Close dials one to KILL the dump, and reads
// it on the closing goroutine while the reading goroutine may still run.
func boundaryDialer(d *net.Dialer, f *feed, coalesce time.Duration) client.Dialer {
	var dialed atomic.Bool
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil || !dialed.CompareAndSwap(false, true) {
			return conn, err
		}
		return &boundaryConn{Conn: conn, feed: f, coalesce: coalesce, pause: time.Sleep}, nil
	}
}
