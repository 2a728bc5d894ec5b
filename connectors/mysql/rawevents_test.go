package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// fullMetaTableMap is a table map of an INT and a VARCHAR column with the
// optional metadata binlog_row_metadata=FULL logs: signedness, column
// names, the primary key.
func fullMetaTableMap(names [2]string, unsigned bool, at uint32, crc bool) []byte {
	cols := []colSpec{{typ: gomysql.MYSQL_TYPE_LONG}, {typ: gomysql.MYSQL_TYPE_VARCHAR, meta: 40}}
	body := tableMapBody(cols)
	sign := byte(0)
	if unsigned {
		sign = 0x80
	}
	body = append(body, replication.TABLE_MAP_OPT_META_SIGNEDNESS, 1, sign)
	var nm []byte
	for _, n := range names {
		nm = gomysql.AppendLengthEncodedInteger(nm, uint64(len(n)))
		nm = append(nm, n...)
	}
	body = append(body, replication.TABLE_MAP_OPT_META_COLUMN_NAME, byte(len(nm)))
	body = append(body, nm...)
	body = append(body, replication.TABLE_MAP_OPT_META_SIMPLE_PRIMARY_KEY, 1, 0)
	if crc { // not verified here; differs per event, as real checksums do
		body = binary.LittleEndian.AppendUint32(body, at*2654435761)
	}
	ev := binlogEvent(replication.TABLE_MAP_EVENT, body)
	binary.LittleEndian.PutUint32(ev[0:], 1700000000+at) // timestamp
	binary.LittleEndian.PutUint32(ev[13:], 1000+at)      // log position
	return ev
}

// checksummedFormatDescription is a MariaDB 10.6 FORMAT_DESCRIPTION event
// announcing CRC32 checksums.
func checksummedFormatDescription() []byte {
	return formatDescriptionOf("10.6.0-MariaDB-ferry-test", true)
}

func dumpEvent(e replication.Event) string {
	var b bytes.Buffer
	e.Dump(&b)
	return b.String()
}

// rawDecoder parses events as the feed does: eventFramer, then rawEvents.
type rawDecoder struct {
	fr  eventFramer
	dec *rawEvents
	// rows is the rows event decoded last, images undecoded.
	rows pendingRows
}

func newRawDecoder() *rawDecoder {
	return &rawDecoder{dec: &rawEvents{flavor: gomysql.MariaDBFlavor}}
}

func (d *rawDecoder) parse(raw []byte) (*replication.BinlogEvent, error) {
	ev, err := d.fr.frame(raw)
	if err != nil {
		return nil, err
	}
	return ev, d.dec.decode(ev, &d.rows)
}

// sealed gives a checksummed event its real CRC32 (the last four bytes).
func sealed(ev []byte) []byte {
	end := len(ev) - replication.BinlogChecksumLength
	binary.LittleEndian.PutUint32(ev[end:], crc32.ChecksumIEEE(ev[:end]))
	return ev
}

// wholeParser decodes every event whole, as the syncer did before raw mode.
func wholeParser() *replication.BinlogParser {
	p := replication.NewBinlogParser()
	p.SetFlavor(gomysql.MariaDBFlavor)
	p.SetTimestampStringLocation(time.UTC)
	return p
}

// queryBody is a QUERY event's body: no status variables.
func queryBody(schema, query string) []byte {
	b := make([]byte, 13)
	b[8] = byte(len(schema))
	b = append(b, schema...)
	b = append(b, 0)
	return append(b, query...)
}

// withTableID sets the table id of a table map or rows event (6 bytes at
// the start of the body).
func withTableID(raw []byte, id uint64) []byte {
	out := bytes.Clone(raw)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	copy(out[replication.EventHeaderSize:], b[:6])
	return out
}

// randomRowsEvent is a rows event of the fullMetaTableMap table: v1 or v2,
// insert, update or delete, ending its statement or not.
func randomRowsEvent(r *rand.Rand, crc bool) []byte {
	cols := []colSpec{
		{typ: gomysql.MYSQL_TYPE_LONG, gen: func(r *rand.Rand) []byte { return binary.LittleEndian.AppendUint32(nil, r.Uint32()) }},
		{typ: gomysql.MYSQL_TYPE_VARCHAR, gen: textGen(40, 1, true)},
	}
	types := []replication.EventType{
		replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
	}
	typ := types[r.IntN(len(types))]
	body := rowsBody(r, cols, twoImages(typ))
	if r.IntN(3) == 0 {
		body[6] = 0 // the statement goes on
	}
	if v, _ := rowsVersion(typ); v == 1 {
		body = append(body[:8:8], body[10:]...) // no extra data
	} else if r.IntN(4) == 0 {
		// v2 extra data: a partition info block, which Ferry skips
		body = append(body[:8:8], append([]byte{5, 0, 1, 7, 0}, body[10:]...)...)
	}
	if crc {
		body = append(body, 0, 0, 0, 0)
	}
	return binlogEvent(typ, body)
}

// TestRawEventsDecodeAsGoMySQL: a generated binlog (GTIDs, queries, table
// maps of two table ids whose columns change, rows events of every
// version and kind, some statements of several, XIDs, heartbeats), each
// event framed by eventFramer and decoded by rawEvents, is what
// go-mysql decodes when it decodes every event whole. Rows left pending
// decode, through the parser, to go-mysql's rows; a table map is
// the one decoded before exactly when its bytes are the same.
func TestRawEventsDecodeAsGoMySQL(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	for _, crc := range []bool{false, true} {
		fde := formatDescription()
		if crc {
			fde = checksummedFormatDescription()
		}
		tail := func(body []byte) []byte {
			if crc {
				return append(body, 0, 0, 0, 0)
			}
			return body
		}
		whole, raw := wholeParser(), newRawDecoder()
		last := map[uint64][]byte{}
		lastEv := map[uint64]*replication.TableMapEvent{}
		check := func(ev []byte) {
			t.Helper()
			if crc && ev[4] != byte(replication.FORMAT_DESCRIPTION_EVENT) {
				ev = sealed(ev)
			}
			want, err := whole.Parse(ev)
			if err != nil {
				t.Fatalf("crc=%v: go-mysql whole: %v", crc, err)
			}
			got, err := raw.parse(ev)
			if err != nil {
				t.Fatalf("crc=%v: raw %s: %v", crc, want.Header.EventType, err)
			}
			compareRawEvent(t, raw, got, want, last, lastEv)
		}
		check(fde)
		for range 300 {
			gtid := make([]byte, 13)
			binary.LittleEndian.PutUint64(gtid, r.Uint64N(1<<40))
			check(binlogEvent(replication.MARIADB_GTID_EVENT, tail(gtid)))
			if r.IntN(8) == 0 {
				check(binlogEvent(replication.QUERY_EVENT, tail(queryBody("db", "ALTER TABLE t ADD COLUMN x INT"))))
			}
			for range 1 + r.IntN(3) { // statements
				ids := []uint64{testTableID, testTableID + 1 + r.Uint64N(2)}
				for _, id := range ids {
					names := [2]string{"id", []string{"name", "label"}[r.IntN(2)]}
					check(withTableID(fullMetaTableMap(names, r.IntN(4) == 0, uint32(r.IntN(3)), crc), id))
				}
				for {
					ev := withTableID(randomRowsEvent(r, crc), ids[r.IntN(2)])
					check(ev)
					if ev[replication.EventHeaderSize+6] == 1 { // STMT_END_F
						break
					}
				}
			}
			if r.IntN(10) == 0 {
				check(binlogEvent(replication.HEARTBEAT_EVENT, tail([]byte("mariadb-bin.000001"))))
			}
			check(binlogEvent(replication.XID_EVENT, tail(binary.LittleEndian.AppendUint64(nil, r.Uint64()))))
		}
	}
}

func compareRawEvent(t *testing.T, raw *rawDecoder, got, want *replication.BinlogEvent, last map[uint64][]byte, lastEv map[uint64]*replication.TableMapEvent) {
	t.Helper()
	typ := want.Header.EventType
	if typ == replication.HEARTBEAT_EVENT {
		if _, ok := got.Event.(*replication.GenericEvent); !ok {
			t.Fatalf("heartbeat decoded as %T; the stream reads its bytes", got.Event)
		}
		return
	}
	if reflect.TypeOf(got.Event) != reflect.TypeOf(want.Event) {
		t.Fatalf("%s: decoded as %T, go-mysql %T", typ, got.Event, want.Event)
	}
	switch g := got.Event.(type) {
	case *replication.TableMapEvent:
		w := want.Event.(*replication.TableMapEvent)
		body := got.RawData[replication.EventHeaderSize:]
		if raw.dec.fde.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32 {
			body = body[:len(body)-replication.BinlogChecksumLength] // checksums differ, as real ones do
		}
		reused := lastEv[w.TableID] == g
		if same := bytes.Equal(last[w.TableID], body); reused != same {
			t.Fatalf("table id %d: reused %v, bytes the same %v", w.TableID, reused, same)
		}
		last[w.TableID], lastEv[w.TableID] = bytes.Clone(body), g
	case *replication.RowsEvent:
		w := want.Event.(*replication.RowsEvent)
		if g.Rows != nil || raw.rows.ev != g {
			t.Fatalf("%s: rows decoded, or not left pending", typ)
		}
		if g.TableID != w.TableID || g.Flags != w.Flags || g.ColumnCount != w.ColumnCount || g.Version != w.Version ||
			!bytes.Equal(g.ColumnBitmap1, w.ColumnBitmap1) || !bytes.Equal(g.ColumnBitmap2, w.ColumnBitmap2) ||
			dumpEvent(g.Table) != dumpEvent(w.Table) || rowsOp(typ) != w.Type() {
			t.Fatalf("%s: header %+v\nwant %+v", typ, g, w)
		}
		p := raw.rows
		full, err := p.dec.parseRows(p.table, p.raw)
		if err != nil {
			t.Fatalf("%s: whole: %v", typ, err)
		}
		if dumpEvent(full.Table) != dumpEvent(w.Table) {
			t.Fatalf("%s: go-mysql decoded the rows with another table map", typ)
		}
		if a, b := dumpEvent(full), dumpEvent(w); a != b {
			t.Fatalf("%s rows decoded as\n%s\ngo-mysql:\n%s", typ, a, b)
		}
		return
	}
	if a, b := dumpEvent(got.Event), dumpEvent(want.Event); a != b {
		t.Fatalf("%s decoded as\n%s\ngo-mysql:\n%s", typ, a, b)
	}
}

// TestRawEventsRowsWithoutTableMap: a rows event whose table id no table
// map of its statement named fails, as go-mysql's decoding does, also
// after a statement's end forgot the maps before it.
func TestRawEventsRowsWithoutTableMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	d := newRawDecoder()
	tm := fullMetaTableMap([2]string{"id", "name"}, false, 0, false)
	end := withTableID(randomRowsEvent(r, false), testTableID)
	end[replication.EventHeaderSize+6] = 1 // STMT_END_F
	for _, raw := range [][]byte{formatDescription(), tm, end} {
		if _, err := d.parse(raw); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []uint64{testTableID, testTableID + 1} {
		if _, err := d.parse(withTableID(end, id)); !errors.Is(err, errNoTableMap) {
			t.Fatalf("table id %d after the statement's end: %v, want %v", id, err, errNoTableMap)
		}
	}
}

// TestRawEventsCutShort: a rows or table map event cut anywhere fails with
// an error, never a panic or a header read past the event.
func TestRawEventsCutShort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tm := fullMetaTableMap([2]string{"id", "name"}, false, 0, false)
	for range 20 {
		rows := randomRowsEvent(r, false)
		for _, whole := range [][]byte{tm, rows} {
			for n := replication.EventHeaderSize; n < len(whole); n++ {
				d := newRawDecoder()
				for _, raw := range [][]byte{formatDescription(), tm} {
					if _, err := d.parse(raw); err != nil {
						t.Fatal(err)
					}
				}
				cut := bytes.Clone(whole[:n])
				binary.LittleEndian.PutUint32(cut[9:], uint32(n)) // the event's size
				ev, err := d.parse(cut)
				if err != nil {
					continue
				}
				if re, ok := ev.Event.(*replication.RowsEvent); ok && d.rows.pos > len(d.rows.data) {
					t.Fatalf("%d of %d bytes: header read to %d", n, len(whole), d.rows.pos)
				} else if ok && re.Table == nil {
					t.Fatalf("%d of %d bytes: no table map", n, len(whole))
				}
			}
		}
	}
}

// TestRawEventsForgetAtNewFormatDescription: a new binlog file's (or
// server's) format description makes every table map decode afresh.
func TestRawEventsForgetAtNewFormatDescription(t *testing.T) {
	d := newRawDecoder()
	var tms []*replication.TableMapEvent
	for _, raw := range [][]byte{formatDescription(), fullMetaTableMap([2]string{"a", "b"}, false, 0, false),
		formatDescription(), fullMetaTableMap([2]string{"a", "b"}, false, 0, false)} {
		ev, err := d.parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if te, ok := ev.Event.(*replication.TableMapEvent); ok {
			tms = append(tms, te)
		}
	}
	if tms[0] == tms[1] || string(tms[1].ColumnName[1]) != "b" {
		t.Fatal("a table map was reused across format descriptions")
	}
}

// TestCompressedTransactionStops: a compressed MySQL transaction stops the
// source (fatal, naming the setting) instead of being skipped with its
// changes, as it was.
func TestCompressedTransactionStops(t *testing.T) {
	st := &stream{file: "binlog.000003"}
	ev := &replication.BinlogEvent{
		Header: &replication.EventHeader{EventType: replication.TRANSACTION_PAYLOAD_EVENT, LogPos: 900, EventSize: 200},
		Event:  &replication.GenericEvent{},
	}
	err := st.handle(t.Context(), ev)
	if !errors.Is(err, errCompressedTransaction) || !isFatal(err) {
		t.Fatalf("got %v, want fatal %v", err, errCompressedTransaction)
	}
	if !strings.Contains(err.Error(), "binlog.000003:700") || !strings.Contains(err.Error(), "binlog_transaction_compression=OFF") {
		t.Fatalf("%v: no position or setting named", err)
	}
}
