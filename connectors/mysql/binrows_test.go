package mysql

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// binlogEvent frames an event body with its 19-byte header.
func binlogEvent(typ replication.EventType, body []byte) []byte {
	h := make([]byte, replication.EventHeaderSize)
	binary.LittleEndian.PutUint32(h[0:], 1700000000)
	h[4] = byte(typ)
	binary.LittleEndian.PutUint32(h[5:], 1)
	binary.LittleEndian.PutUint32(h[9:], uint32(len(h)+len(body)))
	return append(h, body...)
}

// formatDescription is a FORMAT_DESCRIPTION_EVENT of a server old enough
// to log no checksums, with v2 rows events and 6-byte table ids.
func formatDescription() []byte {
	return formatDescriptionOf("5.5.0-ferry-test", false)
}

// formatDescriptionOf is a FORMAT_DESCRIPTION_EVENT of the given server
// version, with v2 rows events and 6-byte table ids; crc announces CRC32
// checksums (the event itself then carries one, zero here).
func formatDescriptionOf(serverVersion string, crc bool) []byte {
	body := binary.LittleEndian.AppendUint16(nil, 4)
	version := make([]byte, 50)
	copy(version, serverVersion)
	body = append(body, version...)
	body = binary.LittleEndian.AppendUint32(body, 0)
	body = append(body, replication.EventHeaderSize)
	lengths := bytes.Repeat([]byte{8}, 200)
	for _, t := range []replication.EventType{replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2} {
		lengths[t-1] = 10
	}
	body = append(body, lengths...)
	if crc {
		body = append(body, replication.BINLOG_CHECKSUM_ALG_CRC32, 0, 0, 0, 0)
	}
	return binlogEvent(replication.FORMAT_DESCRIPTION_EVENT, body)
}

const testTableID = 42

func tableMapBody(cols []colSpec) []byte {
	body := []byte{testTableID, 0, 0, 0, 0, 0, 0, 0}
	body = append(body, 2, 'd', 'b', 0, 1, 't', 0)
	body = gomysql.AppendLengthEncodedInteger(body, uint64(len(cols)))
	var meta []byte
	for _, c := range cols {
		body = append(body, c.typ)
		switch c.typ {
		case gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_NEWDECIMAL:
			meta = append(meta, byte(c.meta>>8), byte(c.meta))
		case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_BIT:
			meta = binary.LittleEndian.AppendUint16(meta, c.meta)
		case gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_GEOMETRY,
			gomysql.MYSQL_TYPE_JSON, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2:
			meta = append(meta, byte(c.meta))
		}
	}
	body = gomysql.AppendLengthEncodedInteger(body, uint64(len(meta)))
	body = append(body, meta...)
	return append(body, bytes.Repeat([]byte{0xff}, (len(cols)+7)/8)...)
}

// rowImage is a full image's null bitmap and values.
func rowImage(r *rand.Rand, cols []colSpec, like []byte) []byte {
	if like != nil && r.IntN(3) == 0 {
		return like // an UPDATE that leaves the row as it was
	}
	nulls := make([]byte, (len(cols)+7)/8)
	var vals []byte
	for i, c := range cols {
		if r.IntN(6) == 0 {
			nulls[i/8] |= 1 << (i % 8)
			continue
		}
		vals = append(vals, c.gen(r)...)
	}
	return append(nulls, vals...)
}

func rowsBody(r *rand.Rand, cols []colSpec, update bool) []byte {
	body := []byte{testTableID, 0, 0, 0, 0, 0, 1, 0, 2, 0} // STMT_END_F, no extra data
	body = gomysql.AppendLengthEncodedInteger(body, uint64(len(cols)))
	full := bytes.Repeat([]byte{0xff}, (len(cols)+7)/8)
	body = append(body, full...)
	if update {
		body = append(body, full...)
	}
	for range 1 + r.IntN(5) {
		img := rowImage(r, cols, nil)
		body = append(body, img...)
		if update {
			body = append(body, rowImage(r, cols, img)...)
		}
	}
	return body
}

// parseRows parses a table map and rows event; with lazy, as the syncer
// and the feed do (go-mysql in raw mode, rawEvents decoding), so only the
// rows event's header is decoded and the returned pendingRows holds the
// rest.
func parseRows(t *testing.T, tableMap, rows []byte, lazy bool) (*replication.RowsEvent, *pendingRows) {
	t.Helper()
	p := replication.NewBinlogParser()
	p.SetFlavor(gomysql.MariaDBFlavor)
	p.SetTimestampStringLocation(time.UTC) // as the syncer is configured
	p.SetRawMode(lazy)
	dec := &rawEvents{flavor: gomysql.MariaDBFlavor}
	var pending pendingRows
	var ev *replication.BinlogEvent
	for _, raw := range [][]byte{formatDescription(), tableMap, rows} {
		var err error
		if ev, err = p.Parse(raw); err != nil {
			t.Fatalf("go-mysql parse: %v", err)
		}
		if err := dec.decode(ev, &pending); err != nil {
			t.Fatalf("decode: %v", err)
		}
	}
	return ev.Event.(*replication.RowsEvent), &pending
}

func testPlan(t testing.TB, r *rand.Rand, tm *replication.TableMapEvent, cols []colSpec) *tablePlan {
	p := &tablePlan{db: "db", table: "t", included: true, bin: make([]binCol, len(cols))}
	pl := &planner{}
	for i, c := range cols {
		c.info.name = "c" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		dec := pl.columnDecoder(tm, i, c.info)
		p.allDecode = append(p.allDecode, dec)
		p.columns, p.srcIdx, p.decode = append(p.columns, c.info.name), append(p.srcIdx, i), append(p.decode, dec)
		if p.bin[i] = binColumn(tm, i, c.info, dec); p.bin[i].kind == binUnsupported {
			t.Fatalf("column %s: no binary decoder", c.name)
		}
	}
	for i := range cols {
		if r.IntN(3) == 0 || (i == len(cols)-1 && len(p.keyIdx) == 0) {
			p.keyColumns, p.keyIdx, p.keyDecode = append(p.keyColumns, p.columns[i]), append(p.keyIdx, i), append(p.keyDecode, p.allDecode[i])
		}
	}
	return p
}

func checkDifferential(t *testing.T, r *rand.Rand, cols []colSpec) {
	t.Helper()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	tableMap := binlogEvent(replication.TABLE_MAP_EVENT, tableMapBody(cols))
	for _, typ := range []replication.EventType{replication.WRITE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2} {
		op, step := map[replication.EventType]ferry.Op{replication.WRITE_ROWS_EVENTv2: ferry.OpCreate,
			replication.DELETE_ROWS_EVENTv2: ferry.OpDelete, replication.UPDATE_ROWS_EVENTv2: ferry.OpUpdate}[typ], 1
		if op == ferry.OpUpdate {
			step = 2
		}
		rows := binlogEvent(typ, rowsBody(r, cols, step == 2))
		want, _ := parseRows(t, tableMap, rows, false)
		got, pending := parseRows(t, tableMap, rows, true)
		if got.Rows != nil || pending.ev != got {
			t.Fatalf("%v: the lazy parse decoded the rows, or left no pending event", names)
		}
		p := testPlan(t, r, want.Table, cols)
		s := &stream{pending: pending}
		changes, err := s.decodeImages(p, op, step)
		if err != nil {
			t.Fatalf("%v %s: %v", names, op, err)
		}
		if len(changes)*step != len(want.Rows) {
			t.Fatalf("%v %s: %d changes, go-mysql decoded %d images", names, op, len(changes), len(want.Rows))
		}
		for k, c := range changes {
			images := want.Rows[k*step : k*step+step]
			compareRow(t, names, "image 0", p, images[0], map[ferry.Op]ferry.Row{ferry.OpCreate: c.after, ferry.OpDelete: c.before, ferry.OpUpdate: c.before}[op])
			keyFrom := images[0]
			if step == 2 {
				compareRow(t, names, "image 1", p, images[1], c.after)
				keyFrom = images[1]
				if changed := p.keyChanged(images[0], images[1], nil, nil); changed != (c.oldKey.Values != nil) {
					t.Fatalf("%v: key columns %v changed %v, fast decoder says %v\nbefore %#v\nafter  %#v", names, p.keyColumns, changed, !changed, images[0], images[1])
				}
				if c.oldKey.Values != nil {
					compareRow(t, names, "old row", p, images[0], c.oldRow)
					if wantKey := p.key([][]any{images[0]}, []absent{nil}); !reflect.DeepEqual(c.oldKey, wantKey) {
						t.Fatalf("%v: old key %#v, want %#v", names, c.oldKey, wantKey)
					}
				}
			}
			if wantKey := p.key([][]any{keyFrom}, []absent{nil}); !reflect.DeepEqual(c.key, wantKey) {
				t.Fatalf("%v %s: key %#v, want %#v", names, op, c.key, wantKey)
			}
		}
	}
}

func compareRow(t *testing.T, names []string, what string, p *tablePlan, raw []any, got ferry.Row) {
	t.Helper()
	want := p.row(raw, nil)
	if !reflect.DeepEqual(got.Columns, want.Columns) {
		t.Fatalf("%v %s: columns %v, want %v", names, what, got.Columns, want.Columns)
	}
	for i := range want.Values {
		if !reflect.DeepEqual(got.Values[i], want.Values[i]) {
			t.Fatalf("%v %s: column %s (%s): %#v, want %#v (go-mysql's raw value %#v)", names, what, want.Columns[i], names[i], got.Values[i], want.Values[i], raw[i])
		}
	}
}

// TestBinaryDecoderLeavesTypesToGoMySQL: tables with a column type Ferry
// does not decode itself have no binary plan, so their events are decoded
// by go-mysql.
func TestBinaryDecoderLeavesTypesToGoMySQL(t *testing.T) {
	for _, c := range []struct {
		name string
		typ  byte
		meta uint16
	}{
		{"mysql json", gomysql.MYSQL_TYPE_JSON, 4}, {"time(3)", gomysql.MYSQL_TYPE_TIME2, 3}, {"old time", gomysql.MYSQL_TYPE_TIME, 0},
		{"old datetime", gomysql.MYSQL_TYPE_DATETIME, 0}, {"old timestamp", gomysql.MYSQL_TYPE_TIMESTAMP, 0},
		{"old decimal", gomysql.MYSQL_TYPE_DECIMAL, 0}, {"datetime(7)", gomysql.MYSQL_TYPE_DATETIME2, 7},
		{"decimal(66,2)", gomysql.MYSQL_TYPE_NEWDECIMAL, 66<<8 | 2}, {"null", gomysql.MYSQL_TYPE_NULL, 0},
	} {
		tm := &replication.TableMapEvent{ColumnCount: 1, ColumnType: []byte{c.typ}, ColumnMeta: []uint16{c.meta}}
		if b := binColumn(tm, 0, colInfo{}, passThrough); b.kind != binUnsupported {
			t.Errorf("%s: binary decoder %d, want none", c.name, b.kind)
		}
	}
}

// w1Columns is the table of e2ebench's workloads: BIGINT PRIMARY KEY,
// VARCHAR(64), INT, DECIMAL(10,2), DATETIME(6).
func w1Columns() []colSpec {
	specs := allColumnSpecs()
	pick := func(name string) colSpec {
		for _, s := range specs {
			if s.name == name {
				return s
			}
		}
		panic(name)
	}
	vc := pick("varchar utf8")
	vc.meta = 256 // VARCHAR(64) utf8mb4
	vc.gen = textGen(20, 2, true)
	return []colSpec{pick("int8"), vc, pick("int4"), pick("decimal(10,2)"), pick("datetime(6)")}
}

// BenchmarkRowsEventDecode decodes a 100-row INSERT event of the W1 table
// into Ferry's rows: go-mysql's decoding then the plan's conversion, against
// Ferry's own decoder. Reported per row.
func BenchmarkRowsEventDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	cols := w1Columns()
	tableMap := binlogEvent(replication.TABLE_MAP_EVENT, tableMapBody(cols))
	body := []byte{testTableID, 0, 0, 0, 0, 0, 0, 0, 2, 0} // no STMT_END_F: the table map stays
	body = gomysql.AppendLengthEncodedInteger(body, uint64(len(cols)))
	body = append(body, 0xff)
	const rows = 100
	for range rows {
		nulls := []byte{0}
		var vals []byte
		for _, c := range cols {
			vals = append(vals, c.gen(r)...)
		}
		body = append(body, append(nulls, vals...)...)
	}
	event := binlogEvent(replication.WRITE_ROWS_EVENTv2, body)
	for _, lazy := range []bool{false, true} {
		name := map[bool]string{false: "go-mysql", true: "ferry"}[lazy]
		b.Run(name, func(b *testing.B) {
			p := replication.NewBinlogParser()
			p.SetFlavor(gomysql.MariaDBFlavor)
			p.SetTimestampStringLocation(time.UTC)
			p.SetRawMode(lazy)
			dec := &rawEvents{flavor: gomysql.MariaDBFlavor}
			var pending pendingRows
			parse := func(raw []byte) (*replication.BinlogEvent, error) {
				ev, err := p.Parse(raw)
				if err == nil {
					err = dec.decode(ev, &pending)
				}
				return ev, err
			}
			for _, raw := range [][]byte{formatDescription(), tableMap} {
				if _, err := parse(raw); err != nil {
					b.Fatal(err)
				}
			}
			ev, _ := parse(event)
			plan := testPlan(b, rand.New(rand.NewPCG(1, 1)), ev.Event.(*replication.RowsEvent).Table, cols)
			plan.keyColumns, plan.keyIdx, plan.keyDecode = plan.columns[:1], []int{0}, plan.allDecode[:1]
			s := &stream{pending: &pending}
			var sink []ferry.Row
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ev, err := parse(event)
				if err != nil {
					b.Fatal(err)
				}
				e := ev.Event.(*replication.RowsEvent)
				sink = sink[:0]
				if lazy {
					changes, err := s.decodeImages(plan, ferry.OpCreate, 1)
					if err != nil || len(changes) != rows {
						b.Fatal(err, len(changes))
					}
					for _, c := range changes {
						sink = append(sink, c.after, c.key)
					}
					s.binChanges = changes[:0]
					continue
				}
				for _, raw := range e.Rows {
					sink = append(sink, plan.row(raw, nil), plan.key([][]any{raw}, []absent{nil}))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
		})
	}
}
