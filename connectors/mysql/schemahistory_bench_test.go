package mysql

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry/internal/state"
)

// benchTable is the e2ebench row: BIGINT, VARCHAR(64), INT, DECIMAL(10,2),
// DATETIME(6), as a table map with or without its column metadata.
func benchTable(full bool) *replication.TableMapEvent {
	tm := &replication.TableMapEvent{TableID: 7, Schema: []byte("bench"), Table: []byte("orders"), ColumnCount: 5,
		ColumnType: []byte{gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_LONG,
			gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DATETIME2},
		ColumnMeta: []uint16{0, 256, 0, 0x0a02, 6}}
	if full {
		tm.ColumnName = [][]byte{[]byte("id"), []byte("customer"), []byte("qty"), []byte("price"), []byte("created")}
		tm.PrimaryKey = []uint64{0}
		tm.SignednessBitmap = []byte{0}
	}
	return tm
}

func benchHistory(b *testing.B) *schemaHistory { return benchHistoryT(b) }

func benchHistoryT(b testing.TB) *schemaHistory {
	h, _ := loadSchemaHistory(context.Background(), nil, "db")
	a := &ddlApplier{h: h, at: position{File: "b.000001", Pos: 4}, db: "bench",
		captured: func(string, string) bool { return true }, collate: collationCharset}
	if _, err := a.apply(context.Background(), "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(64), qty INT, price DECIMAL(10,2), created DATETIME(6))"); err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkDecodeRow: planning (cached per table map) and decoding one
// row image, with the binlog's column metadata (FULL) and with the schema
// history (MINIMAL).
func BenchmarkDecodeRow(b *testing.B) {
	raw := []any{int64(42), "customer-42", int32(3), "19.99", "2024-05-01 12:00:00.123456"}
	for _, c := range []struct {
		name string
		full bool
	}{{"FULL", true}, {"history", false}} {
		b.Run(c.name, func(b *testing.B) {
			pl := &planner{flavor: gomysql.MariaDBFlavor, filter: &filter{}, at: position{File: "b.000001", Pos: 100}}
			if !c.full {
				pl.schemas = benchHistory(b)
			}
			tm := benchTable(c.full)
			b.ReportAllocs()
			for b.Loop() {
				p, err := pl.plan(tm)
				if err != nil {
					b.Fatal(err)
				}
				_ = p.row(raw, nil)
				_ = p.key([][]any{raw}, []absent{nil})
			}
		})
	}
}

// BenchmarkSchemaHistory10000DDL applies 10,000 ALTER TABLEs (ten tables
// of ten columns, adding and dropping a column in turn) to a history kept
// in a real state store, and reports the store's size and how long
// loading the history back takes.
func BenchmarkSchemaHistory10000DDL(b *testing.B) {
	for b.Loop() {
		dir := b.TempDir()
		store, err := state.Open(dir, state.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		h, _ := loadSchemaHistory(ctx, store, "db")
		at := position{File: "mysql-bin.000001", Pos: 4}
		apply := func(q string) {
			at.Pos += 200
			a := &ddlApplier{h: h, at: at, db: "d", captured: func(string, string) bool { return true }, collate: collationCharset}
			if _, err := a.apply(context.Background(), q); err != nil {
				b.Fatal(err)
			}
		}
		for t := range 10 {
			apply(fmt.Sprintf("CREATE TABLE t%d (id BIGINT PRIMARY KEY, a VARCHAR(64), b INT UNSIGNED, c DECIMAL(10,2), d DATETIME(6), "+
				"e ENUM('x','y','z'), f TEXT, g BLOB, h JSON, i DOUBLE)", t))
		}
		began := time.Now()
		for i := range 10000 {
			if i/10%2 == 0 {
				apply(fmt.Sprintf("ALTER TABLE t%d ADD COLUMN x VARCHAR(32) AFTER a", i%10))
			} else {
				apply(fmt.Sprintf("ALTER TABLE t%d DROP COLUMN x", i%10))
			}
		}
		rate := 10000 / time.Since(began).Seconds()
		recs, _ := store.SchemaRecords(ctx, "db")
		bytes := 0
		for _, r := range recs {
			bytes += len(r)
		}
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "ferry.db"))
		if err != nil {
			b.Fatal(err)
		}
		store, err = state.Open(dir, state.Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		began = time.Now()
		loaded, err := loadSchemaHistory(ctx, store, "db")
		reload := time.Since(began)
		if err != nil || len(loaded.tables) != 10 {
			b.Fatalf("reload: %v", err)
		}
		_ = store.Close()
		b.ReportMetric(rate, "DDL/s")
		b.ReportMetric(float64(reload.Milliseconds()), "ms-reload")
		b.ReportMetric(float64(len(recs)), "records")
		b.ReportMetric(float64(bytes)/1e6, "MB-records")
		b.ReportMetric(float64(st.Size())/1e6, "MB-file")
	}
}
