package mysql

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

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

func dumpEvent(e *replication.TableMapEvent) string {
	var b bytes.Buffer
	e.Dump(&b)
	return b.String()
}

// TestTableMapsDecodeAsGoMySQL: a table map completed by tableMaps, reused
// or decoded afresh, is what go-mysql decodes whole, and the rows event
// after it sees it complete; only a table map the same byte for byte as its
// table id's last one is reused.
func TestTableMapsDecodeAsGoMySQL(t *testing.T) {
	for _, crc := range []bool{false, true} {
		fde := formatDescription()
		if crc {
			fde = checksummedFormatDescription()
		}
		f := newFeed(gomysql.MariaDBFlavor)
		lazy := replication.NewBinlogParser()
		lazy.SetFlavor(gomysql.MariaDBFlavor)
		lazy.SetTableMapOptionalMetaDecodeFunc(f.maps.skipOptionalMeta)
		lazy.SetRowsEventDecodeFunc(f.decodeRowsHeader)
		parse := func(raw []byte) *replication.BinlogEvent {
			ev, err := lazy.Parse(raw)
			if err != nil {
				t.Fatalf("go-mysql parse: %v", err)
			}
			if err := f.maps.observe(ev); err != nil {
				t.Fatalf("observe: %v", err)
			}
			return ev
		}
		parse(fde)
		steps := []struct {
			names    [2]string
			unsigned bool
			reused   bool
		}{
			{[2]string{"id", "name"}, false, false},
			{[2]string{"id", "name"}, false, true},
			{[2]string{"id", "label"}, false, false}, // renamed column, same table id
			{[2]string{"id", "label"}, true, false},  // signedness changed
			{[2]string{"id", "label"}, true, true},
		}
		var last *replication.TableMapEvent
		for i, st := range steps {
			raw := fullMetaTableMap(st.names, st.unsigned, uint32(i), crc)
			te := parse(raw).Event.(*replication.TableMapEvent)
			whole := replication.NewBinlogParser()
			whole.SetFlavor(gomysql.MariaDBFlavor)
			if _, err := whole.Parse(fde); err != nil {
				t.Fatal(err)
			}
			want, err := whole.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := dumpEvent(te), dumpEvent(want.Event.(*replication.TableMapEvent)); got != want {
				t.Fatalf("crc=%v step %d: completed table map\n%s\nwant\n%s", crc, i, got, want)
			}
			if reused := last != nil && &te.ColumnName[1][0] == &last.ColumnName[1][0]; reused != st.reused {
				t.Fatalf("crc=%v step %d: reused %v, want %v", crc, i, reused, st.reused)
			}
			last = te
			rows := rowsBody(rand.New(rand.NewPCG(1, uint64(i))), []colSpec{
				{typ: gomysql.MYSQL_TYPE_LONG, gen: func(*rand.Rand) []byte { return []byte{1, 0, 0, 0} }},
				{typ: gomysql.MYSQL_TYPE_VARCHAR, gen: func(*rand.Rand) []byte { return []byte{1, 'x'} }},
			}, false)
			if crc {
				rows = append(rows, 0, 0, 0, 0)
			}
			re := parse(binlogEvent(replication.WRITE_ROWS_EVENTv2, rows)).Event.(*replication.RowsEvent)
			if re.Table != te || string(re.Table.ColumnName[1]) != st.names[1] {
				t.Fatalf("crc=%v step %d: the rows event's table map is not the completed one", crc, i)
			}
		}
	}
}

// TestTableMapsForgetAtNewFormatDescription: a new binlog file's (or
// server's) format description makes every table map decode afresh.
func TestTableMapsForgetAtNewFormatDescription(t *testing.T) {
	f := newFeed(gomysql.MariaDBFlavor)
	p := replication.NewBinlogParser()
	p.SetTableMapOptionalMetaDecodeFunc(f.maps.skipOptionalMeta)
	var tms []*replication.TableMapEvent
	for _, raw := range [][]byte{formatDescription(), fullMetaTableMap([2]string{"a", "b"}, false, 0, false),
		formatDescription(), fullMetaTableMap([2]string{"a", "b"}, false, 1, false)} {
		ev, err := p.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.maps.observe(ev); err != nil {
			t.Fatal(err)
		}
		if te, ok := ev.Event.(*replication.TableMapEvent); ok {
			tms = append(tms, te)
		}
	}
	if &tms[0].ColumnName[0][0] == &tms[1].ColumnName[0][0] || string(tms[1].ColumnName[1]) != "b" {
		t.Fatal("a table map was reused across format descriptions")
	}
}
