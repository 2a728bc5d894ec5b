package mysql

import (
	"bytes"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

var _ ferry.StatusReporter = (*Source)(nil)

// sourceState is a Source's lifecycle state; the zero value is connecting.
type sourceState uint32

const (
	stateConnecting sourceState = iota
	stateStreaming
	stateReconnecting
	stateStopped
)

var stateNames = [...]ferry.SourceState{stateConnecting: ferry.StateConnecting, stateStreaming: ferry.StateStreaming,
	stateReconnecting: ferry.StateReconnecting, stateStopped: ferry.StateStopped}

// setState records a transition; a stopped source stays stopped.
func (s *Source) setState(st sourceState) {
	for {
		old := s.state.Load()
		if sourceState(old) == stateStopped || s.state.CompareAndSwap(old, uint32(st)) {
			return
		}
	}
}

// Status reports the connection state, lag and read position. See
// ferry.StatusReporter; it never waits for the stream goroutine.
func (s *Source) Status() ferry.SourceStatus {
	state := sourceState(s.state.Load())
	out := ferry.SourceStatus{State: stateNames[state], Connected: state == stateStreaming}
	st := s.live.Load()
	if st == nil {
		return out
	}
	pos, lag := st.status.read(time.Now())
	out.Lag, out.Position, out.BinlogFile, out.BinlogPos = lag, pos.String(), pos.File, uint64(pos.Pos)
	return out
}

// streamStatus is what Status reads of a stream. It has its own lock: the
// stream's lock is held while a batch waits for room in the pipeline,
// which may last as long as a sink is down.
type streamStatus struct {
	mu  sync.Mutex
	pos position // the read position at the last transaction boundary
	// lastCommit is the latest commit time seen in a transaction's events;
	// caughtUp is when a heartbeat last found every event up to the
	// server's position read; since is when streaming began (the base of
	// the lag until either is known).
	lastCommit, caughtUp, since time.Time
	clock                       func() time.Time // nil: time.Now (tests set it)
}

func (c *streamStatus) start(p position, now time.Time) {
	c.mu.Lock()
	c.pos, c.since = p, now
	c.mu.Unlock()
}

// observe accounts for one handled event: the read position after it, and
// what the event says about lag; before is the read position before it. It
// runs for every event, so it reads the clock only for heartbeats.
func (c *streamStatus) observe(ev *replication.BinlogEvent, before, after position, inTx bool) {
	h := ev.Header
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pos = after
	switch ev.Event.(type) {
	case *replication.MariadbGTIDEvent, *replication.GTIDEvent, *replication.QueryEvent,
		*replication.XIDEvent, *replication.RowsEvent, *replication.TableMapEvent:
		// Events of a transaction carry its time; the format description and
		// the GTID lists carry the binlog file's creation time instead.
		if t := time.Unix(int64(h.Timestamp), 0); h.Timestamp > 0 && t.After(c.lastCommit) {
			c.lastCommit = t
		}
		return
	}
	if !inTx && heartbeatCaughtUp(ev, before) {
		if c.clock != nil {
			c.caughtUp = c.clock()
		} else {
			c.caughtUp = time.Now()
		}
	}
}

// heartbeatCaughtUp reports whether ev is a heartbeat saying the server has
// nothing beyond readPos. A server sends heartbeats only while its dump
// thread waits for new events, at the end of what it sent; the classic
// heartbeat names that place (its file in the body, the offset in the
// header), which must be where this stream stands.
func heartbeatCaughtUp(ev *replication.BinlogEvent, readPos position) bool {
	switch ev.Header.EventType {
	case replication.HEARTBEAT_LOG_EVENT_V2:
		return true // MySQL 8.0.26+: the position is in a TLV body; the idle dump thread is enough
	case replication.HEARTBEAT_EVENT:
	default:
		return false
	}
	g, ok := ev.Event.(*replication.GenericEvent)
	if !ok {
		return false
	}
	file := string(bytes.TrimRight(g.Data, "\x00"))
	return (file == "" || file == readPos.File) && ev.Header.LogPos <= readPos.Pos
}

// read returns the read position and the lag as of now: the time since the
// later of the last commit read and the last caught-up heartbeat, so it
// grows from the last contact when nothing arrives.
func (c *streamStatus) read(now time.Time) (position, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := c.lastCommit
	if c.caughtUp.After(ref) {
		ref = c.caughtUp
	}
	if ref.IsZero() {
		ref = c.since
	}
	return c.pos, max(now.Sub(ref), 0)
}
