package mysql

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/retry"
)

// pump streams until ctx ends or a fatal error, reconnecting after lost
// connections from the last transaction boundary it read. The events are
// handled on the dump's reading goroutine (see feed); the pump arms each
// connection and waits for its end. c is nil while reconnecting, and stays
// nil when a reconnect fails (the database is gone, or ctx ended during the
// back-off): every path out of pump must cope with that.
func (s *Source) pump(ctx context.Context, st *stream, c *binlogConn) {
	var current atomic.Pointer[binlogConn]
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watchdog(watchCtx, &current)
	for {
		current.Store(c)
		c.feed.arm(ctx, st)
		err := c.feed.end(ctx, s.explain)
		if errors.Is(err, errReplayEnd) {
			s.setState(stateStopped)
			s.fail(ctx, ferry.ErrEndOfInput)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if isFatal(err) {
			s.setState(stateStopped)
			s.fail(ctx, err)
			return
		}
		s.setState(stateReconnecting)
		current.Store(nil) // reconnecting: nothing for the watchdog to close
		c.close()
		c = nil
		st.restart()
		s.log.Warn("binlog stream interrupted; reconnecting", "error", err, "resume_at", st.committed.String())
		if c, err = s.reconnect(ctx, st.committed); err != nil {
			s.setState(stateStopped)
			s.fail(ctx, err)
			return
		}
		s.setState(stateStreaming)
	}
}

// close ends the connection; the feed's events are no longer handled once
// it returns.
func (c *binlogConn) close() {
	c.feed.stop()
	c.dump.close()
}

// watchdog closes a stream that went silent: with heartbeats requested, the
// server sends something at least every heartbeat period, so a longer
// silence is a dead connection TCP has not noticed. Counting events and
// checking on a ticker costs far less than a read deadline per packet.
func (s *Source) watchdog(ctx context.Context, current *atomic.Pointer[binlogConn]) {
	limit := 3*s.cfg.Heartbeat + 10*time.Second
	t := time.NewTicker(limit)
	defer t.Stop()
	var last *binlogConn
	var seen uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c := current.Load()
		if c == nil {
			last = nil
			continue
		}
		if n := c.feed.events.Load(); c != last || n != seen {
			last, seen = c, n
			continue
		}
		s.log.Warn("no binlog event or heartbeat received; closing the stalled connection", "silent_for", limit.String())
		c.dump.close()
	}
}

// reconnect retries startStream with backoff until it works, a fatal error
// occurs, or ctx ends. It waits before the first attempt too: the server
// that just dropped the stream is rarely back at once.
func (s *Source) reconnect(ctx context.Context, at position) (*binlogConn, error) {
	b := retry.New(retry.Reconnect())
	if err := b.Wait(ctx, nil); err != nil {
		return nil, err
	}
	var c *binlogConn
	err := b.Do(ctx, func(ctx context.Context) error {
		var err error
		c, err = s.startStream(ctx, at)
		if isFatal(err) {
			return retry.Permanent(err)
		}
		return err
	}, func(failures int, err error, wait time.Duration) {
		// The wait before the first attempt counted as one failure.
		s.log.Warn("reconnect failed", "attempt", failures-1, "retry_in", wait.String(), "error", err)
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("binlog connection restored", "attempt", b.Failures(), "resume_at", at.String())
	return c, nil
}

func (s *Source) fail(ctx context.Context, err error) {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return
	}
	select {
	case s.errc <- err:
	default:
	}
}

// mergeFrom is the size of a transaction that Read returns alone rather
// than merge it with others: merging saves per-batch work, which such a
// batch spreads over enough changes already, and costs a copy of every
// change (360 bytes each; a bulk load of 1000-row transactions spent 12 %
// of its allocated bytes merging them in pairs, issue 18).
const mergeFrom = 256

// Read returns the next transactions, merged up to batch_size changes. A
// finite source's end, like a fatal error, is returned after every batch
// read before it, so a stop delivers (and checkpoints) all it can.
func (s *Source) Read(ctx context.Context) (ferry.Batch, error) {
	b, err := s.next(ctx)
	if err != nil || len(b.Changes) >= mergeFrom {
		return b, err
	}
	if n, queued := len(b.Changes), len(s.out); queued > 0 && n > 0 && n < s.cfg.BatchSize {
		// Room at once for the transactions merged below if they are the
		// size of this one: appending them one by one regrew the slice
		// for every few.
		merged := min(queued+1, s.cfg.BatchSize/n)
		b.Changes = slices.Grow(b.Changes, (merged-1)*n)
	}
	for len(b.Changes) < s.cfg.BatchSize {
		select {
		case nb := <-s.out:
			if len(b.Changes)+len(nb.Changes) > s.cfg.BatchSize || len(nb.Changes) >= mergeFrom {
				// Merging would only copy big transactions around: the
				// next Read returns it as it is.
				held := nb // not &nb: that moved every batch received here to the heap
				s.held = &held
				return b, nil
			}
			s.gate.release(nb)
			b.Size = b.SizeOfChanges() + nb.SizeOfChanges()
			b.Changes = append(b.Changes, nb.Changes...)
			b.Checkpoint = nb.Checkpoint
		default:
			return b, nil
		}
	}
	return b, nil
}

// next is the batch a Read starts with: the one the last Read held back,
// else the next one read, else the fatal error once every batch before it
// was read.
func (s *Source) next(ctx context.Context) (ferry.Batch, error) {
	var b ferry.Batch
	switch {
	case s.held != nil:
		b, s.held = *s.held, nil
	case s.err != nil:
		select {
		case b = <-s.out:
		default:
			return ferry.Batch{}, s.err
		}
	default:
		select {
		case b = <-s.out:
		case s.err = <-s.errc:
			return s.next(ctx)
		case <-ctx.Done():
			return ferry.Batch{}, ctx.Err()
		}
	}
	s.gate.release(b)
	return b, nil
}

// Close stops streaming and releases the connections.
func (s *Source) Close(context.Context) error {
	s.setState(stateStopped)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.meta != nil {
		s.meta.close()
	}
	return nil
}

// metaConn is the source's SQL connection for metadata lookups during
// streaming; it reconnects once when the server dropped it.
type metaConn struct {
	src  *Source
	mu   sync.Mutex
	conn *client.Conn
}

// do runs fn on the connection, reconnecting once when it fails for a
// reason other than a server error.
func (m *metaConn) do(fn func(*metaConn) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for try := 0; ; try++ {
		if m.conn == nil {
			ctx, cancel := context.WithTimeout(context.Background(), m.src.cfg.ConnectTimeout)
			conn, err := m.src.connect(ctx)
			cancel()
			if err != nil {
				return err
			}
			m.conn = conn
		}
		err := fn(m)
		var me *gomysql.MyError
		if err == nil || try == 1 || errors.As(err, &me) {
			return err
		}
		m.conn.Close()
		m.conn = nil
	}
}

func (m *metaConn) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		m.conn.Close()
		m.conn = nil
	}
}
