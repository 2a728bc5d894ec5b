package mysql

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// BenchmarkSingleRowTransaction: what one single-row MariaDB transaction
// (GTID, TABLE_MAP with FULL metadata, WRITE_ROWS, XID) costs from go-mysql's
// parsing of its events to the batch the stream hands over, as the syncer
// parses and the feed handles them (W2 of issue 18, without the network).
func BenchmarkSingleRowTransaction(b *testing.B) {
	st, out, handle := benchStream(b)
	handle(formatDescription(), 100)
	gtid := binlogEvent(replication.MARIADB_GTID_EVENT, make([]byte, 19))
	tableMap := fullMetaTableMap([2]string{"id", "name"}, false, 0, false)
	rows := []byte{testTableID, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0xff, 0, 42, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'}
	rowsEv := binlogEvent(replication.WRITE_ROWS_EVENTv2, rows)
	xid := binlogEvent(replication.XID_EVENT, make([]byte, 8))
	at := uint32(1000)
	b.ReportAllocs()
	for seq := uint64(2); b.Loop(); seq++ {
		binary.LittleEndian.PutUint64(gtid[replication.EventHeaderSize:], seq)
		for _, raw := range [][]byte{gtid, tableMap, rowsEv, xid} {
			at += uint32(len(raw))
			handle(raw, at)
		}
		batch := <-out
		if len(batch.Changes) != 1 {
			b.Fatalf("%d changes", len(batch.Changes))
		}
		st.gate.release(batch)
	}
}

// BenchmarkBulkTransaction: what one 1000-row transaction (GTID, TABLE_MAP,
// 20 WRITE_ROWS events of 50 rows, XID) costs from go-mysql's parsing to the
// batch the stream hands over, per row (W1 of issue 18 without the network:
// the growth of the transaction's change buffer shows here).
func BenchmarkBulkTransaction(b *testing.B) {
	const perEvent, events = 50, 20
	st, out, handle := benchStream(b)
	handle(formatDescription(), 100)
	gtid := binlogEvent(replication.MARIADB_GTID_EVENT, make([]byte, 19))
	tableMap := fullMetaTableMap([2]string{"id", "name"}, false, 0, false)
	body := []byte{testTableID, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2, 0xff}
	for i := range perEvent {
		body = append(body, 0, byte(i), 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o')
	}
	last := binlogEvent(replication.WRITE_ROWS_EVENTv2, body)
	body[6] = 0 // not the statement's end: go-mysql forgets the table maps there
	mid := binlogEvent(replication.WRITE_ROWS_EVENTv2, body)
	xid := binlogEvent(replication.XID_EVENT, make([]byte, 8))
	at := uint32(1000)
	b.ReportAllocs()
	for seq := uint64(2); b.Loop(); seq++ {
		binary.LittleEndian.PutUint64(gtid[replication.EventHeaderSize:], seq)
		at += uint32(len(gtid) + len(tableMap))
		handle(gtid, at-uint32(len(tableMap)))
		handle(tableMap, at)
		for i := range events {
			ev := mid
			if i == events-1 {
				ev = last
			}
			at += uint32(len(ev))
			handle(ev, at)
		}
		at += uint32(len(xid))
		handle(xid, at)
		batch := <-out
		if len(batch.Changes) != perEvent*events {
			b.Fatalf("%d changes", len(batch.Changes))
		}
		st.gate.release(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perEvent*events), "ns/row")
}

// benchStream is a stream of a MariaDB source including db.*, and the
// function that frames a raw event at the given end position and hands it
// to the stream as the dump's reader does.
func benchStream(b *testing.B) (*stream, <-chan ferry.Batch, func(raw []byte, at uint32)) {
	f, err := newFilter(&Config{Include: []string{"db.*"}})
	if err != nil {
		b.Fatal(err)
	}
	g := newGTIDTracker(gomysql.MariaDBFlavor)
	if err := g.seed("0-1-1"); err != nil {
		b.Fatal(err)
	}
	out := make(chan ferry.Batch, 1)
	st := &stream{source: "db", cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler),
		planner: &planner{flavor: gomysql.MariaDBFlavor, filter: f}, gtid: g, out: out, gate: newGate(1000, 1<<20),
		file: "mariadb-bin.000001", serverID: new(atomic.Uint32), jobs: newJobList("db")}
	fd := newFeed(gomysql.MariaDBFlavor)
	fd.arm(context.Background(), st)
	handle := func(raw []byte, at uint32) {
		binary.LittleEndian.PutUint32(raw[13:], at)
		ev, err := fd.frame.frame(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := fd.HandleEvent(ev); err != nil {
			b.Fatal(err)
		}
		if ev.Header.EventType == replication.XID_EVENT {
			// A read of the connection after each transaction: the feed
			// hands what it committed over there (boundaryConn).
			if _, err := fd.atReadBoundary(); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st, out, handle
}
