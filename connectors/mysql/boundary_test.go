package mysql

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// mysqlEvents is a MySQL 8 binlog as SHOW BINLOG EVENTS lists it: a GTID
// transaction, a DDL, an anonymous transaction, an atomic CREATE ... SELECT.
var mysqlEvents = []struct {
	pos       int
	typ, info string
}{
	{4, "Format_desc", "Server ver: 8.0.36"},
	{126, "Previous_gtids", ""},
	{157, "Gtid", "SET @@SESSION.GTID_NEXT= 'uuid:1'"},
	{236, "Query", "BEGIN"},
	{311, "Table_map", "table_id: 90 (x.t)"},
	{360, "Write_rows", "table_id: 90 flags: STMT_END_F"},
	{400, "Xid", "COMMIT /* xid=10 */"},
	{431, "Gtid", "SET @@SESSION.GTID_NEXT= 'uuid:2'"},
	{510, "Query", "use `x`; CREATE TABLE u (id INT)"},
	{620, "Anonymous_Gtid", "SET @@SESSION.GTID_NEXT= 'ANONYMOUS'"},
	{700, "Query", "BEGIN"},
	{780, "Query", "SAVEPOINT `a`"},
	{850, "Table_map", "table_id: 90 (x.t)"},
	{900, "Write_rows", "table_id: 90 flags: STMT_END_F"},
	{950, "Xid", "COMMIT /* xid=12 */"},
	{981, "Gtid", "SET @@SESSION.GTID_NEXT= 'uuid:3'"},
	{1060, "Query", "use `x`; CREATE TABLE c (id INT) START TRANSACTION"},
	{1200, "Table_map", "table_id: 91 (x.c)"},
	{1250, "Write_rows", "table_id: 91 flags: STMT_END_F"},
	{1300, "Xid", "COMMIT /* xid=13 */"},
	{1331, "Rotate", "mysql-bin.000002;pos=4"},
}

func TestBoundaryScan(t *testing.T) {
	cases := []struct {
		target int
		want   string // "" accepted, else a substring of the refusal
	}{
		{157, ""}, {431, ""}, {620, ""}, {981, ""}, {1331, ""},
		{236, "first position f:157, or the next one at f:431"},
		{400, "begins at f:157"},
		{510, "first position f:431, or the next one at f:620"},
		{780, "first position f:620, or the next one at f:981"},
		{1060, "begins at f:981"},
		{1250, "first position f:981, or the next one at f:1331"},
		{1251, "not the start of an event in f; the transaction around it begins at f:981"},
	}
	for _, c := range cases {
		sc := &boundaryScan{target: uint64(c.target)}
		for _, e := range mysqlEvents {
			row := []gomysql.FieldValue{text("f"), text(strconv.Itoa(e.pos)), text(e.typ), text("1"), text("0"), text(e.info)}
			if err := sc.row(row); err != nil {
				t.Fatal(err)
			}
		}
		err := sc.verdict(position{File: "f", Pos: uint32(c.target)})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("position %d refused: %v", c.target, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, errNotBoundary)):
			t.Errorf("position %d: %v, want %q", c.target, err, c.want)
		}
	}
}

func text(s string) gomysql.FieldValue {
	return gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, []byte(s))
}
