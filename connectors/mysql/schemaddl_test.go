package mysql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

type memHistory map[string][]byte

func (m memHistory) SchemaRecords(_ context.Context, source string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, source+"/"); ok {
			out[rest] = v
		}
	}
	return out, nil
}

func (m memHistory) SaveSchema(_ context.Context, source, key string, v []byte) error {
	m[source+"/"+key] = v
	return nil
}

func applyAll(t *testing.T, h *schemaHistory, stmts ...string) {
	t.Helper()
	for i, q := range stmts {
		a := &ddlApplier{h: h, at: position{File: "b.000001", Pos: uint32(100 * (i + 1))}, db: "d", ddl: q,
			captured: func(db, table string) bool { return db == "d" }, mariadb: true, collate: collationCharset}
		if q, err := a.apply(context.Background(), q); err != nil || q != "" {
			t.Fatalf("%s: quarantined %q, %v", stmts[i], q, err)
		}
	}
}

func columnsAt(h *schemaHistory, table string, pos uint32) string {
	v := h.inForce(table, position{File: "b.000001", Pos: pos})
	if v == nil || v.Schema == nil {
		return "<none>"
	}
	var parts []string
	for _, c := range v.Schema.Columns {
		p := c.Name
		if c.Unsigned {
			p += "+u"
		}
		if c.Charset != "" {
			p += "/" + c.Charset
		}
		if c.JSON {
			p += "+json"
		}
		if len(c.Labels) > 0 {
			p += "[" + strings.Join(c.Labels, ",") + "]"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ") + " key=" + strings.Join(v.Schema.Key, ",")
}

// TestDDLMovesHistory: each DDL kind moves the history, each version stays
// readable at its position, and reading the DDLs again changes nothing.
func TestDDLMovesHistory(t *testing.T) {
	store := memHistory{}
	h, _ := loadSchemaHistory(context.Background(), store, "src")
	h.base = &historyBase{Server: "utf8mb4", DBCharsets: map[string]string{"d": "latin1"}}
	stmts := []string{
		"CREATE TABLE t (id INT UNSIGNED NOT NULL, a VARCHAR(3), b BLOB, e ENUM('x','it''s'), j JSON, ip INET6, g POINT NOT NULL, PRIMARY KEY (id))",
		"ALTER TABLE t ADD COLUMN c INT AFTER id, DROP COLUMN b",
		"ALTER TABLE `d`.`t` MODIFY a TEXT CHARACTER SET utf8mb4 FIRST, RENAME COLUMN id TO pk",
		"ALTER TABLE t CHANGE c c2 BIGINT UNSIGNED, CONVERT TO CHARACTER SET utf8mb3",
		"RENAME TABLE t TO t2",
		"CREATE TABLE t3 LIKE t2",
		"DROP TABLE t2",
		"CREATE OR REPLACE TABLE t2 (uuid UUID, x INT) PARTITION BY HASH (x) PARTITIONS 2",
		"ALTER TABLE t3 ADD PARTITION PARTITIONS 2",
	}
	applyAll(t, h, stmts...)
	want := []struct {
		table string
		pos   uint32
		cols  string
	}{
		{"d.t", 150, "id+u a/latin1 b/binary e/latin1[x,it's] j/latin1+json ip/binary g/binary key=id"},
		{"d.t", 250, "id+u c a/latin1 e/latin1[x,it's] j/latin1+json ip/binary g/binary key=id"},
		{"d.t", 350, "a/utf8mb4 pk+u c e/latin1[x,it's] j/latin1+json ip/binary g/binary key=pk"},
		{"d.t", 450, "a/utf8 pk+u c2+u e/utf8[x,it's] j/utf8+json ip/binary g/binary key=pk"},
		{"d.t", 550, "<none>"},
		{"d.t2", 550, "a/utf8 pk+u c2+u e/utf8[x,it's] j/utf8+json ip/binary g/binary key=pk"},
		{"d.t3", 650, "a/utf8 pk+u c2+u e/utf8[x,it's] j/utf8+json ip/binary g/binary key=pk"},
		{"d.t2", 750, "<none>"},
		{"d.t2", 850, "uuid/binary x key="},
		{"d.t3", 950, "a/utf8 pk+u c2+u e/utf8[x,it's] j/utf8+json ip/binary g/binary key=pk"},
	}
	check := func(h *schemaHistory, when string) {
		t.Helper()
		for _, w := range want {
			if got := columnsAt(h, w.table, w.pos); got != w.cols {
				t.Errorf("%s: %s at %d:\n got %s\nwant %s", when, w.table, w.pos, got, w.cols)
			}
		}
	}
	check(h, "live")
	saved := len(store)
	applyAll(t, h, stmts...)
	if len(store) != saved {
		t.Errorf("reading the DDLs again saved %d new records", len(store)-saved)
	}
	loaded, err := loadSchemaHistory(context.Background(), store, "src")
	if err != nil {
		t.Fatal(err)
	}
	loaded.base = h.base
	check(loaded, "reloaded")
}

// TestUnparseableDDLQuarantinesItsTable: only the named captured table.
func TestUnparseableDDLQuarantinesItsTable(t *testing.T) {
	h, _ := loadSchemaHistory(context.Background(), nil, "src")
	applyAll(t, h, "CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE u (id INT PRIMARY KEY)")
	a := &ddlApplier{h: h, at: position{File: "b.000001", Pos: 1000}, db: "d",
		captured: func(db, table string) bool { return true }, collate: collationCharset}
	q := "ALTER TABLE t ADD COLUMN v INT, ADD SYSTEM VERSIONING WITH VENDOR MAGIC"
	got, err := a.apply(context.Background(), q)
	if err != nil || got != "d.t" {
		t.Fatalf("quarantined %q, %v; want d.t", got, err)
	}
	one := func(t *tableSchema) string {
		if len(t.Columns) != 1 {
			return "not one column"
		}
		return ""
	}
	if _, err := h.schemaAt(context.Background(), "d", "t", position{File: "b.000001", Pos: 1100}, one, nil); err == nil || !strings.Contains(err.Error(), "quarantined") {
		t.Errorf("rows of t after the DDL: %v, want quarantined", err)
	}
	if s, err := h.schemaAt(context.Background(), "d", "u", position{File: "b.000001", Pos: 1100}, one, nil); err != nil || s == nil {
		t.Errorf("rows of u: %v", err)
	}
	if _, err := a.apply(context.Background(), "GRANT MAGIC ON EVERYTHING"); err == nil {
		t.Error("an unreadable statement naming no table gave no error to log")
	}
}

func TestRewriteMariaDBTypes(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE TABLE t (uuid UUID NOT NULL, b INET6)":      "CREATE TABLE t (uuid BINARY(16) NOT NULL, b BINARY(16))",
		"ALTER TABLE t ADD COLUMN uuid CHAR(36)":            "ALTER TABLE t ADD COLUMN uuid CHAR(36)",
		"ALTER TABLE t CHANGE uuid uuid UUID":               "ALTER TABLE t CHANGE uuid uuid BINARY(16)",
		"CREATE OR REPLACE TABLE t (p POINT, s VARCHAR(3))": "CREATE  TABLE t (p LONGBLOB, s VARCHAR(3))",
		"CREATE TABLE t (s VARCHAR(9) DEFAULT 'uuid uuid')": "CREATE TABLE t (s VARCHAR(9) DEFAULT 'uuid uuid')",
	} {
		if got := rewriteMariaDBTypes(in); got != want {
			t.Errorf("%s:\n got %s\nwant %s", in, got, want)
		}
	}
	if !slices.Equal(enumLabels("enum('a','it''s','')"), []string{"a", "it's", ""}) {
		t.Errorf("enumLabels: %q", enumLabels("enum('a','it''s','')"))
	}
}

// TestTableMapFit: a version whose column count or types differ from the
// table map's is refused, naming the column.
func TestTableMapFit(t *testing.T) {
	h := benchHistoryT(t)
	v := h.inForce("bench.orders", position{File: "b.000001", Pos: 10})
	if got := tableMapFit(benchTable(false))(v.Schema); got != "" {
		t.Errorf("the matching table map: %s", got)
	}
	tm := benchTable(false)
	tm.ColumnType[2] = gomysql.MYSQL_TYPE_VARCHAR
	if got := tableMapFit(tm)(v.Schema); !strings.Contains(got, "column 3, qty int") {
		t.Errorf("a retyped column: %q", got)
	}
	tm = benchTable(false)
	tm.ColumnCount = 6
	if got := tableMapFit(tm)(v.Schema); !strings.Contains(got, "5 columns in the history, 6 in the binlog") {
		t.Errorf("an added column: %q", got)
	}
	_, err := h.schemaAt(context.Background(), "bench", "orders", position{File: "b.000001", Pos: 10}, tableMapFit(tm), nil)
	if !errors.Is(err, errQuarantined) || !strings.Contains(err.Error(), "ferry schema resync --source db --table bench.orders") {
		t.Errorf("rows that do not fit: %v, want a quarantine naming the resync", err)
	}
}

// TestDDLTableNameCase: with lower_case_table_names set, the DDL's
// `Orders` and the table map's `orders` are one table.
func TestDDLTableNameCase(t *testing.T) {
	h, _ := loadSchemaHistory(context.Background(), nil, "src")
	h.fold = true
	applyAll(t, h, "CREATE TABLE Orders (id INT PRIMARY KEY)", "ALTER TABLE ORDERS ADD COLUMN v INT")
	if got := columnsAt(h, "d.orders", 250); got != "id v key=id" {
		t.Errorf("d.orders: %s", got)
	}
}

// failingHistory fails every save after the first ok ones, as a kill
// between two records of one DDL would leave the store.
type failingHistory struct {
	memHistory
	ok int
}

func (f *failingHistory) SaveSchema(ctx context.Context, source, key string, v []byte) error {
	if f.ok == 0 {
		return errors.New("killed")
	}
	f.ok--
	return f.memHistory.SaveSchema(ctx, source, key, v)
}

// TestRenameReadAgainAfterPartialSave: a RENAME TABLE whose new name was
// saved but not the old one's drop (killed between) drops the old name
// when it is read again after the restart.
func TestRenameReadAgainAfterPartialSave(t *testing.T) {
	ctx := context.Background()
	store := &failingHistory{memHistory: memHistory{}, ok: 2} // the CREATE, then the RENAME's new name
	h, err := loadSchemaHistory(ctx, store, "s")
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, h, "CREATE TABLE a (id INT PRIMARY KEY, x INT)")
	a := &ddlApplier{h: h, at: position{File: "b.000001", Pos: 200}, db: "d", ddl: "RENAME TABLE a TO b",
		captured: func(db, table string) bool { return db == "d" }, mariadb: true, collate: collationCharset}
	if _, err := a.apply(ctx, a.ddl); err == nil {
		t.Fatal("the second save did not fail")
	}

	h, err = loadSchemaHistory(ctx, store.memHistory, "s") // the restart
	if err != nil {
		t.Fatal(err)
	}
	a.h = h
	if _, err := a.apply(ctx, a.ddl); err != nil {
		t.Fatal(err)
	}
	if got := columnsAt(h, "d.a", 300); got != "<none>" {
		t.Errorf("d.a after the RENAME read again: %s, want <none> (dropped)", got)
	}
	if got := columnsAt(h, "d.b", 300); got != "id x key=id" {
		t.Errorf("d.b after the RENAME read again: %s, want id x key=id", got)
	}
	reloaded, err := loadSchemaHistory(ctx, store.memHistory, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := columnsAt(reloaded, "d.a", 300); got != "<none>" {
		t.Errorf("d.a is not dropped durably: %s", got)
	}
}
