package mysql

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// maxReadCoalesce bounds read_coalesce: it is added to a change's latency,
// and a longer pause would only fill the socket's buffer.
const maxReadCoalesce = 100 * time.Millisecond

// busyBytes is how much the connection may bring per read_coalesce before
// it counts as busy and is no longer paused. Batches are large enough then
// (over a hundred single-row transactions), and a pause would only hold
// back a sender whose bytes no longer fit the socket's receive buffer
// (128 KiB until the kernel grows it).
const busyBytes = 32 << 10

// quietLowat is the socket's receive low-water mark during a read_coalesce
// pause: twice what makes a connection busy, so a pause rarely reaches it.
const quietLowat = 2 * busyBytes

// boundaryConn is a binlog dump connection as its packetReader reads it.
// The reader reads the socket only when the events it had read are handled,
// so each read is a boundary: before it, the stream hands the transactions it
// committed since the last one to the pipeline together, one wake-up of the
// pipeline's reader for all of them instead of one per transaction.
//
// When it handed some over and its last read had emptied the socket, the
// connection also waits until coalesce has passed since that read: at a
// steady trickle of small transactions, those committed meanwhile then
// arrive in one read and cross the pipeline as one batch (one transform, one
// sink Write, one produce request), which costs a fraction of the same work
// per transaction (issue 18). A change waits at most coalesce longer; a lone
// change after a quiet spell, or a backlog, not at all. A backlog is told
// by its rate, not only by reads that fill the buffer: draining one, a
// reader as fast as the sender often empties the socket, and pausing then
// capped a drain of single-row transactions at what the receive buffer holds
// per pause (59k instead of 140k rows/s, in some runs and not others).
//
// Read is called only by the dump's reading goroutine (and, before it
// starts, by the goroutine that set the dump up), never concurrently.
type boundaryConn struct {
	net.Conn
	feed     *feed
	coalesce time.Duration
	last     time.Time // when the socket was last read
	// drained: the last read took less than it could, so the socket held
	// nothing more then. A read that filled the buffer is never paused
	// after.
	drained bool
	// busy: the last window of at least coalesce brought more than
	// busyBytes per coalesce; window and since are the current one's.
	busy   bool
	window int
	since  time.Time
	pause  func(time.Duration) // time.Sleep; a test records the pauses
	// lowat sets the socket's SO_RCVLOWAT (nil: not settable here).
	lowat func(bytes int) error
	now   func() time.Time // time.Now; a test's clock
}

func (c *boundaryConn) Read(p []byte) (int, error) {
	handed, err := c.feed.atReadBoundary()
	if err != nil {
		return 0, err
	}
	if handed && c.drained && !c.busy && c.coalesce > 0 {
		if d := c.coalesce - c.now().Sub(c.last); d > 0 {
			if err := c.pauseQuietly(d); err != nil {
				return 0, err
			}
		}
	}
	n, err := c.Conn.Read(p)
	c.last, c.drained = c.now(), n < len(p)
	c.measure(n)
	return n, err
}

// pauseQuietly pauses for d with the socket's receive low-water mark
// raised to quietLowat. The runtime's poller watches the socket all along
// (edge-triggered), and without it every transaction the server sent
// during the pause woke the poller's thread to find no goroutine waiting
// for it: at 5,000 single-row transactions/s, six to thirteen empty
// wake-ups per 5 ms pause, each a sleep and a wake of a thread (issue 18).
// The mark is 1 again before the connection is read, so a read that finds
// the socket empty is woken by the next byte as before.
func (c *boundaryConn) pauseQuietly(d time.Duration) error {
	if c.lowat != nil && c.lowat(quietLowat) != nil {
		c.lowat = nil // not this socket: pause as before, and stop trying
	}
	c.pause(d)
	if c.lowat == nil {
		return nil
	}
	if err := c.lowat(1); err != nil {
		// Left raised, a read of an empty socket would wait for
		// quietLowat bytes: the stream reconnects instead.
		return fmt.Errorf("restore the binlog socket's receive low-water mark after read_coalesce: %w", err)
	}
	return nil
}

// measure adds a read's bytes to the current window and, once the window
// spans coalesce, decides from its rate whether the connection is busy.
func (c *boundaryConn) measure(n int) {
	if c.coalesce <= 0 {
		return
	}
	c.window += n
	if el := c.last.Sub(c.since); el >= c.coalesce {
		c.busy = float64(c.window) > busyBytes*el.Seconds()/c.coalesce.Seconds()
		c.window, c.since = 0, c.last
	}
}

// boundaryDialer dials a binlog dump connection, which hands f's
// transactions over at each read boundary.
func boundaryDialer(d *net.Dialer, f *feed, coalesce time.Duration) client.Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &boundaryConn{Conn: conn, feed: f, coalesce: coalesce, pause: time.Sleep, now: time.Now, lowat: receiveLowat(conn)}, nil
	}
}
