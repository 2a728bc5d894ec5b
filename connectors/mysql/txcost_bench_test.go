package mysql

import (
	"context"
	"encoding/binary"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// BenchmarkSingleRowTransaction: what one single-row MariaDB transaction
// (GTID, TABLE_MAP with FULL metadata, WRITE_ROWS, XID) costs from go-mysql's
// parsing of its events to the batch the stream hands over, as the syncer
// parses and the feed handles them (W2 of issue 18, without the network).
func BenchmarkSingleRowTransaction(b *testing.B) {
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
	p := replication.NewBinlogParser()
	p.SetFlavor(gomysql.MariaDBFlavor)
	p.SetTimestampStringLocation(time.UTC)
	p.SetRowsEventDecodeFunc(fd.decodeRowsHeader)
	p.SetTableMapOptionalMetaDecodeFunc(fd.maps.skipOptionalMeta)
	handle := func(raw []byte, at uint32) {
		binary.LittleEndian.PutUint32(raw[13:], at)
		ev, err := p.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := fd.HandleEvent(ev); err != nil {
			b.Fatal(err)
		}
	}
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
