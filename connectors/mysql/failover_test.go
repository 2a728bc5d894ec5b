package mysql

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/ferry-cdc/ferry"
)

func TestCheckResumableMariaDB(t *testing.T) {
	for _, c := range []struct {
		name, checkpoint, state, oldest string
		want                            error
		names                           string // in the error
	}{
		{name: "same server", checkpoint: "0-1-100", state: "0-1-100", oldest: "0-1-3"},
		{name: "promoted replica holds it and wrote more", checkpoint: "0-1-100", state: "0-1-100,0-2-150", oldest: ""},
		{name: "replica ahead of the checkpoint", checkpoint: "0-1-120", state: "0-1-130", oldest: "0-1-7"},
		{name: "checkpoint of the promoted replica's own writes", checkpoint: "0-2-140", state: "0-1-100,0-2-150"},
		{name: "replica never received the last delivered transaction", checkpoint: "0-1-101", state: "0-1-100,0-2-150",
			want: errDiverged, names: "0-1-101"},
		{name: "replica behind", checkpoint: "0-1-101", state: "0-1-90", want: errDiverged, names: "0-1-101"},
		{name: "domain unknown to the server", checkpoint: "0-1-10,7-3-5", state: "0-1-10", want: errDiverged, names: "7-3-5"},
		{name: "binlog reset", checkpoint: "0-1-10", state: "", want: errDiverged, names: "0-1-10"},
		{name: "purged past the checkpoint", checkpoint: "0-1-50", state: "0-1-200", oldest: "0-1-100",
			want: errPurged, names: "0-1-100"},
		{name: "oldest binlog starts right after the checkpoint", checkpoint: "0-1-100", state: "0-1-200", oldest: "0-1-100"},
		{name: "purged in one domain of two", checkpoint: "0-1-100,1-2-5", state: "0-1-200,1-2-9", oldest: "0-1-90,1-2-7",
			want: errPurged, names: "1-2-7"},
		{name: "a domain the checkpoint lacks is read from the oldest binlog", checkpoint: "0-1-100", state: "0-1-200,4-2-9",
			oldest: "0-1-90,4-2-3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := serverGTIDState{serverID: 2, gtidMode: true, binlogState: c.state, oldest: c.oldest}
			p := position{File: "mysql-bin.000009", Pos: 400, GTID: c.checkpoint, ServerID: 1}
			err := checkResumable(gomysql.MariaDBFlavor, p, st)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("checkResumable(%s on %s, oldest %s) = %v, want %v", c.checkpoint, c.state, c.oldest, err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), c.names) {
				t.Errorf("error %q does not name %s", err, c.names)
			}
		})
	}
}

func TestCheckResumableMySQL(t *testing.T) {
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "5f0e2b1c-0000-11e1-9e33-c80aa9429562"
	for _, c := range []struct {
		name, checkpoint, executed, purged string
		want                               error
		names                              string
	}{
		{name: "contained", checkpoint: a + ":1-100", executed: a + ":1-100", purged: a + ":1-20"},
		{name: "new primary with its own transactions", checkpoint: a + ":1-100", executed: a + ":1-100,\n" + b + ":1-30"},
		{name: "replica lacks delivered transactions", checkpoint: a + ":1-105", executed: a + ":1-100,\n" + b + ":1-30",
			want: errDiverged, names: a + ":101-105"},
		{name: "a hole in the middle", checkpoint: a + ":1-100", executed: a + ":1-49:51-120",
			want: errDiverged, names: a + ":50"},
		{name: "purged beyond the checkpoint", checkpoint: a + ":1-100", executed: a + ":1-300", purged: a + ":1-150",
			want: errPurged, names: a + ":101-150"},
		{name: "purged another server's transactions never seen", checkpoint: a + ":1-100", executed: a + ":1-100,\n" + b + ":1-9",
			purged: b + ":1-2", want: errPurged, names: b + ":1-2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := serverGTIDState{serverID: 2, gtidMode: true, executed: mysqlSetText(c.executed), purged: mysqlSetText(c.purged)}
			err := checkResumable(gomysql.MySQLFlavor, position{GTID: c.checkpoint}, st)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("checkResumable(%s on %s, purged %s) = %v, want %v", c.checkpoint, c.executed, c.purged, err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), c.names) {
				t.Errorf("error %q does not name %s", err, c.names)
			}
		})
	}
}

// A file position without a GTID state belongs to the server it was taken
// on; one a user typed (server_id unknown) is taken as the server's own.
func TestCheckResumableFilePosition(t *testing.T) {
	noGTIDs := serverGTIDState{serverID: 2}
	for _, c := range []struct {
		name string
		p    position
		st   serverGTIDState
		want error
	}{
		{"same server", position{File: "binlog.000003", Pos: 4, ServerID: 2}, noGTIDs, nil},
		{"typed by a user", position{File: "binlog.000003", Pos: 4}, noGTIDs, nil},
		{"another server", position{File: "binlog.000003", Pos: 4, ServerID: 1}, noGTIDs, errForeignPosition},
		{"GTID state kept, but the server has gtid_mode OFF", position{File: "binlog.000003", Pos: 4, ServerID: 1,
			GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}, noGTIDs, errForeignPosition},
		{"another server, resumed by GTID", position{File: "binlog.000003", Pos: 4, ServerID: 1,
			GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
			serverGTIDState{serverID: 2, gtidMode: true, executed: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkResumable(gomysql.MySQLFlavor, c.p, c.st)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("checkResumable(%+v) = %v, want %v", c.p, err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), "server_id 1") {
				t.Errorf("error %q does not name the checkpoint's server", err)
			}
		})
	}
}

func TestExplainUnsupportedDump(t *testing.T) {
	unsupported := &gomysql.MyError{Code: errUnknownCommand, Message: "Unknown command"}
	for _, c := range []struct {
		byGTID bool
		advice string
	}{
		{true, "start: FILE:POS"},
		{false, "start: GTID-SET"},
	} {
		err, ok := explainUnsupportedDump(unsupported, c.byGTID, "db:3306", "shop")
		if !ok || !isFatal(err) || !strings.Contains(err.Error(), c.advice) || !strings.Contains(err.Error(), "--source shop") {
			t.Errorf("byGTID %v: %v (ok %v), want a fatal error advising %q", c.byGTID, err, ok, c.advice)
		}
	}
	if _, ok := explainUnsupportedDump(&gomysql.MyError{Code: errFatalReadingBinlog}, true, "db:3306", "shop"); ok {
		t.Error("ERROR 1236 taken for an unsupported command")
	}
	if _, ok := explainUnsupportedDump(errors.New("EOF"), false, "db:3306", "shop"); ok {
		t.Error("a connection error taken for an unsupported command")
	}
}

func TestMySQLStartSet(t *testing.T) {
	const executed, purged = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100,\n5f0e2b1c-0000-11e1-9e33-c80aa9429562:1-7", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-20"
	at, _ := parseStart("binlog.000002:4")
	for _, c := range []struct {
		mode startMode
		want string
	}{
		{startMode{latest: true}, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100,5f0e2b1c-0000-11e1-9e33-c80aa9429562:1-7"},
		{startMode{earliest: true}, purged},
		{at, ""},
	} {
		got := mysqlStartSet(c.mode, executed, purged)
		if got != c.want {
			t.Errorf("mysqlStartSet(%+v) = %q, want %q", c.mode, got, c.want)
		}
		if got != "" {
			if _, err := parsePositionText(got); err != nil {
				t.Errorf("%q is not a position the source can save: %v", got, err)
			}
		}
	}
}

// A MySQL transaction whose GTID the state already holds (a server that
// re-sends it) yields no change; the same transaction unseen does.
func TestSeenMySQLTransactionSkipped(t *testing.T) {
	sid := uuid.MustParse("3e11fa47-71ca-11e1-9e33-c80aa9429562")
	for _, c := range []struct {
		gno     int64
		changes int
	}{{5, 0}, {10, 0}, {11, 1}} {
		st, out := testMySQLStream(t, sid.String()+":1-10")
		ctx := context.Background()
		events := []replication.Event{
			&replication.GTIDEvent{SID: sid[:], GNO: c.gno},
			&replication.QueryEvent{Schema: []byte("shop"), Query: []byte("TRUNCATE TABLE orders")},
		}
		for i, e := range events {
			h := &replication.EventHeader{LogPos: uint32(200 + 100*i), EventSize: 100, ServerID: 1}
			if err := st.handle(ctx, &replication.BinlogEvent{Header: h, Event: e}); err != nil {
				t.Fatal(err)
			}
		}
		got := 0
		for len(out) > 0 {
			got += len((<-out).Changes)
		}
		if got != c.changes {
			t.Errorf("GNO %d after state 1-10: %d changes, want %d", c.gno, got, c.changes)
		}
		want := sid.String() + ":1-10"
		if c.gno == 11 {
			want = sid.String() + ":1-11"
		}
		if st.committed.GTID != want {
			t.Errorf("GNO %d: state after commit %s, want %s", c.gno, st.committed.GTID, want)
		}
	}
}

func testMySQLStream(t *testing.T, state string) (*stream, chan ferry.Batch) {
	t.Helper()
	f, err := newFilter(&Config{Include: []string{"shop.*"}})
	if err != nil {
		t.Fatal(err)
	}
	g := newGTIDTracker(gomysql.MySQLFlavor)
	if err := g.seed(state); err != nil {
		t.Fatal(err)
	}
	out := make(chan ferry.Batch, 16)
	return &stream{source: "db", cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), planner: &planner{filter: f},
		gtid: g, out: out, gate: newGate(1000, 1<<20), file: "binlog.000001", serverID: new(atomic.Uint32), jobs: newJobList("db")}, out
}

// The GTID comes from the event's bytes even when go-mysql has overwritten
// the parsed struct with a later GTID of the same domain and server_id (it
// does for the first transaction of a server_id missing from the start
// set, as after a failover).
func TestMariaGTIDFromRawEvent(t *testing.T) {
	raw := make([]byte, replication.EventHeaderSize, replication.EventHeaderSize+13)
	raw = binary.LittleEndian.AppendUint64(raw, 101)
	raw = binary.LittleEndian.AppendUint32(raw, 7)
	raw = append(raw, 0)
	overwritten := &replication.MariadbGTIDEvent{GTID: gomysql.MariadbGTID{DomainID: 7, ServerID: 2, SequenceNumber: 105}}
	ev := &replication.BinlogEvent{RawData: raw, Header: &replication.EventHeader{ServerID: 2}, Event: overwritten}
	if got := formatMariaGTID(mariaGTIDOf(ev)); got != "7-2-101" {
		t.Errorf("GTID %s, want 7-2-101 from the event's bytes", got)
	}
}

// A GTID list the server reports that cannot be parsed is an error naming
// it, never a silent pass.
func TestCheckResumableBadServerText(t *testing.T) {
	p := position{GTID: "0-1-10"}
	for _, c := range []struct {
		flavor string
		st     serverGTIDState
		names  string
	}{
		{gomysql.MariaDBFlavor, serverGTIDState{gtidMode: true, binlogState: "0-1-x"}, "gtid_binlog_state"},
		{gomysql.MariaDBFlavor, serverGTIDState{gtidMode: true, binlogState: "0-1-10", oldest: "zz"}, "oldest binlog"},
	} {
		err := checkResumable(c.flavor, p, c.st)
		if err == nil || errors.Is(err, errDiverged) || errors.Is(err, errPurged) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%+v: %v, want a parse error naming %s", c.st, err, c.names)
		}
	}
	_, err := mysqlMinus("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "not-a-set")
	if err == nil || !strings.Contains(err.Error(), "not-a-set") {
		t.Errorf("mysqlMinus with a bad set: %v", err)
	}
}
