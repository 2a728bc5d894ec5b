package mysql

import (
	"context"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

type memHistory map[string][]byte

func (m memHistory) LoadSchema(_ context.Context, source, table string) ([]byte, error) {
	return m[source+"/"+table], nil
}

func (m memHistory) SaveSchema(_ context.Context, source, table string, v []byte) error {
	m[source+"/"+table] = v
	return nil
}

// TestJSONHistoryRereadsThePast: the frontier asks information_schema and
// records changes; a re-read uses the record in force at its position.
func TestJSONHistoryRereadsThePast(t *testing.T) {
	tm := &replication.TableMapEvent{ColumnType: []byte{gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_BLOB},
		ColumnMeta: []uint16{0, 4}, ColumnName: [][]byte{[]byte("id"), []byte("j")}}
	store := memHistory{}
	today := map[string]bool{"j": true}
	query := func(string, string) (map[string]bool, error) { return today, nil }
	h := &jsonHistory{store: store, source: "db", records: map[string][]jsonRecord{}}
	at := func(pos uint32) position { return position{File: "bin.000001", Pos: pos} }
	if cols, _ := h.columns("d", "t", at(100), tm, query); !cols["j"] {
		t.Fatal("frontier: j is JSON today")
	}
	today = map[string]bool{} // ALTER ... MODIFY j LONGTEXT
	if cols, _ := h.columns("d", "t", at(200), tm, query); cols["j"] {
		t.Fatal("frontier after the ALTER: j is text")
	}
	fresh := &jsonHistory{store: store, source: "db", records: map[string][]jsonRecord{}} // another process
	for pos, want := range map[uint32]bool{100: true, 150: true, 200: false, 250: false} {
		if cols, _ := fresh.columns("d", "t", at(pos), tm, query); cols["j"] != want {
			t.Errorf("re-read at %d: j JSON = %v, want %v", pos, cols["j"], want)
		}
	}
	if cols, _ := fresh.columns("d", "t", at(50), tm, query); cols["j"] {
		t.Error("before the first record: today's schema")
	}
}

// TestUnsignedAfterYear: MariaDB gives YEAR a signedness bit, MySQL does
// not; the bits of later columns must not shift.
func TestUnsignedAfterYear(t *testing.T) {
	tm := &replication.TableMapEvent{ColumnCount: 3,
		ColumnType:       []byte{gomysql.MYSQL_TYPE_YEAR, gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_TINY},
		SignednessBitmap: []byte{0b1010_0000}} // YEAR unsigned, INT signed, TINYINT unsigned
	got := unsignedColumns(tm, gomysql.MariaDBFlavor)
	if !got[0] || got[1] || !got[2] {
		t.Errorf("MariaDB: %v, want YEAR and TINYINT unsigned, INT signed", got)
	}
	tm.SignednessBitmap = []byte{0b0100_0000} // INT signed, TINYINT unsigned
	got = unsignedColumns(tm, gomysql.MySQLFlavor)
	if got[1] || !got[2] {
		t.Errorf("MySQL: %v, want INT signed, TINYINT unsigned", got)
	}
}
