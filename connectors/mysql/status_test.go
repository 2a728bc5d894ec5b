package mysql

import (
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

func heartbeat(file string, pos uint32) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.HEARTBEAT_EVENT, LogPos: pos},
		Event: &replication.GenericEvent{Data: []byte(file)}}
}

func xid(ts uint32, pos uint32) *replication.BinlogEvent {
	return &replication.BinlogEvent{Header: &replication.EventHeader{EventType: replication.XID_EVENT, Timestamp: ts, LogPos: pos},
		Event: &replication.XIDEvent{}}
}

func TestStreamStatusLag(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := position{File: "mysql-bin.000003", Pos: 814}
	now := t0
	c := streamStatus{clock: func() time.Time { return now }}
	c.start(position{File: "mysql-bin.000003", Pos: 4}, t0)
	if p, lag := c.read(t0.Add(2 * time.Second)); lag != 2*time.Second || p.Pos != 4 {
		t.Fatalf("before any event: %v %v (lag counts from the start)", p, lag)
	}
	// A commit read 10 s after it happened (catching up): lag 10 s.
	c.observe(xid(uint32(t0.Unix()), 814), position{File: at.File, Pos: 4}, at, false)
	if _, lag := c.read(t0.Add(10 * time.Second)); lag != 10*time.Second {
		t.Fatalf("after an old commit: lag %v", lag)
	}
	// A heartbeat behind the read position's file says nothing.
	c.observe(heartbeat("mysql-bin.000002", 900), at, at, false)
	if _, lag := c.read(t0.Add(11 * time.Second)); lag != 11*time.Second {
		t.Fatalf("after a heartbeat of another file: lag %v", lag)
	}
	// One at a position beyond what was read says there is more to read.
	c.observe(heartbeat(at.File, 2000), at, at, false)
	if _, lag := c.read(t0.Add(11 * time.Second)); lag != 11*time.Second {
		t.Fatalf("after a heartbeat ahead of the reader: lag %v", lag)
	}
	// Mid-transaction heartbeats cannot say the reader is caught up.
	c.observe(heartbeat(at.File, 814), at, at, true)
	if _, lag := c.read(t0.Add(11 * time.Second)); lag != 11*time.Second {
		t.Fatalf("after a heartbeat inside a transaction: lag %v", lag)
	}
	// A heartbeat where the reader stands: caught up as of that heartbeat,
	// then the lag grows again while nothing arrives.
	now = t0.Add(12 * time.Second)
	c.observe(heartbeat(at.File+"\x00", 814), at, at, false)
	if _, lag := c.read(t0.Add(12 * time.Second)); lag != 0 {
		t.Fatalf("after a caught-up heartbeat: lag %v", lag)
	}
	if _, lag := c.read(t0.Add(42 * time.Second)); lag != 30*time.Second {
		t.Fatalf("30 s of silence: lag %v", lag)
	}
	// Commit times from a clock ahead of ours give no negative lag.
	c.observe(xid(uint32(t0.Unix())+100, 900), at, position{File: at.File, Pos: 900}, false)
	if p, lag := c.read(t0.Add(43 * time.Second)); lag != 0 || p.Pos != 900 {
		t.Fatalf("commit from the future: %v %v", p, lag)
	}
}

func TestSourceStatusStates(t *testing.T) {
	s, err := New("db", &Config{Addr: "127.0.0.1:1", User: "u", ServerID: 1, Flavor: "auto", Start: "latest", Snapshot: "never",
		SnapshotChunk: 1, ConnectTimeout: time.Second, StartupTimeout: time.Second, Heartbeat: time.Second, MaxTxBuffer: 1, MaxTxBufferBytes: 1 << 20, BatchSize: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != ferry.StateConnecting || st.Connected || st.Position != "" {
		t.Fatalf("new source: %+v", st)
	}
	s.setState(stateReconnecting)
	if st := s.Status(); st.State != ferry.StateReconnecting || st.Connected {
		t.Fatalf("reconnecting: %+v", st)
	}
	s.setState(stateStreaming)
	if st := s.Status(); st.State != ferry.StateStreaming || !st.Connected {
		t.Fatalf("streaming: %+v", st)
	}
	s.setState(stateStopped)
	s.setState(stateStreaming) // a late transition cannot revive a stopped source
	if st := s.Status(); st.State != ferry.StateStopped || st.Connected {
		t.Fatalf("stopped: %+v", st)
	}
}

// BenchmarkStreamStatusObserve is the cost Status bookkeeping adds to every
// binlog event.
func BenchmarkStreamStatusObserve(b *testing.B) {
	var c streamStatus
	at := position{File: "mysql-bin.000003", Pos: 814}
	ev := xid(1_800_000_000, 814)
	for b.Loop() {
		c.observe(ev, at, at, false)
	}
}
