package mysql

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
)

// ddlApplier moves the schema history by one DDL statement read from the
// binlog at a position.
type ddlApplier struct {
	h        *schemaHistory
	at       position
	db       string // the statement's default database
	ddl      string
	captured func(db, table string) bool
	mariadb  bool
	collate  func(collation string) string // collation name -> character set
}

// ddlTable finds the table a DDL statement the parser could not read
// names, to quarantine it.
var ddlTable = regexp.MustCompile("(?is)^\\s*(?:ALTER|CREATE(?:\\s+OR\\s+REPLACE)?|DROP|RENAME|TRUNCATE)\\s+(?:ONLINE\\s+|IGNORE\\s+|TEMPORARY\\s+)*TABLE\\s+" +
	"(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?(?:(`(?:[^`]|``)+`|[\\w$]+)\\s*\\.\\s*)?(`(?:[^`]|``)+`|[\\w$]+)")

// isSchemaDDL: only these statements can change a table's columns.
func isSchemaDDL(q string) bool {
	switch strings.ToUpper(firstWord(q)) {
	case "CREATE", "ALTER", "DROP", "RENAME":
		return true
	}
	return false
}

// apply parses and applies q. A statement the parser cannot read that
// names a captured table quarantines that table (returned); others are
// returned as an error for a warning.
func (a *ddlApplier) apply(ctx context.Context, q string) (quarantined string, err error) {
	stmts, perr := parseDDL(q)
	if perr != nil {
		m := ddlTable.FindStringSubmatch(q)
		if m == nil {
			return "", fmt.Errorf("%w: %w", errUnreadableDDL, perr)
		}
		db := a.db
		if m[1] != "" {
			db = identName(m[1])
		}
		table := identName(m[2])
		if !a.captured(db, table) {
			return "", nil
		}
		name := a.h.key(db, table)
		if v := a.h.inForce(name, a.at); v != nil && v.Lifted != "" && v.At == a.at {
			return "", nil // read again after a resync lifted its quarantine (a replay of the range)
		}
		return name, a.h.put(ctx, schemaVersion{Table: name, At: a.at, Origin: originDDL, DDL: q, Quarantined: firstLine(perr.Error())}, false)
	}
	for _, st := range stmts {
		if err := a.stmt(ctx, st); err != nil {
			return "", err
		}
	}
	return "", nil
}

// parseDDL parses q, first rewriting the MariaDB column types the TiDB
// parser does not know into ones that decode the same way.
func parseDDL(q string) (stmts []ast.StmtNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("the SQL parser failed on it (%v)", r)
		}
	}()
	stmts, _, err = parser.New().ParseSQL(rewriteMariaDBTypes(q))
	return stmts, err
}

func (a *ddlApplier) stmt(ctx context.Context, st ast.StmtNode) error {
	switch s := st.(type) {
	case *ast.CreateTableStmt:
		return a.create(ctx, s)
	case *ast.AlterTableStmt:
		return a.alter(ctx, s)
	case *ast.RenameTableStmt:
		for _, tt := range s.TableToTables {
			if err := a.rename(ctx, a.name(tt.OldTable), a.name(tt.NewTable)); err != nil {
				return err
			}
		}
	case *ast.DropTableStmt:
		if s.IsView || s.TemporaryKeyword != ast.TemporaryNone {
			return nil
		}
		for _, t := range s.Tables {
			if err := a.drop(ctx, a.name(t)); err != nil {
				return err
			}
		}
	case *ast.DropDatabaseStmt:
		for name := range a.h.tables {
			if strings.HasPrefix(name, s.Name.O+".") {
				if err := a.drop(ctx, name); err != nil {
					return err
				}
			}
		}
	case *ast.CreateDatabaseStmt:
		return a.dbOptions(ctx, s.Name.O, s.Options)
	case *ast.AlterDatabaseStmt:
		db := s.Name.O
		if db == "" {
			db = a.db
		}
		return a.dbOptions(ctx, db, s.Options)
	}
	return nil
}

// name is db.table of a table name, qualified by the default database.
func (a *ddlApplier) name(t *ast.TableName) string {
	db := t.Schema.O
	if db == "" {
		db = a.db
	}
	return a.h.key(db, t.Name.O)
}

func (a *ddlApplier) isCaptured(name string) bool {
	db, table, _ := strings.Cut(name, ".")
	return a.captured(db, table) || len(a.h.tables[name]) > 0
}

func (a *ddlApplier) record(ctx context.Context, name string, s *tableSchema, unknown bool) error {
	if !a.isCaptured(name) {
		return nil
	}
	return a.h.put(ctx, schemaVersion{Table: name, At: a.at, Origin: originDDL, DDL: a.ddl, Schema: s, Unknown: unknown}, false)
}

// prev is the schema of name just before this DDL; known is false when
// the history cannot tell (no version, or an unknown one).
func (a *ddlApplier) prev(name string) (s *tableSchema, known bool) {
	v := a.h.before(name, a.at)
	if v == nil || v.Unknown || v.Quarantined != "" {
		return nil, false
	}
	return v.Schema, true
}

func (a *ddlApplier) create(ctx context.Context, s *ast.CreateTableStmt) error {
	if s.TemporaryKeyword != ast.TemporaryNone {
		return nil
	}
	name := a.name(s.Table)
	if a.h.has(name, a.at) || (s.IfNotExists && a.exists(name)) {
		return nil
	}
	if s.ReferTable != nil { // CREATE ... LIKE
		src, known := a.prev(a.name(s.ReferTable))
		return a.record(ctx, name, src.clone(), !known || src == nil)
	}
	db, _, _ := strings.Cut(name, ".")
	t := &tableSchema{Charset: a.h.dbCharset(db)}
	for _, o := range s.Options {
		a.tableOption(t, o)
	}
	for _, c := range s.Cols {
		col, pk := a.column(t, c)
		t.Columns = append(t.Columns, col)
		if pk {
			t.Key = []string{col.Name}
		}
	}
	for _, c := range s.Constraints {
		if c.Tp == ast.ConstraintPrimaryKey {
			t.Key = keyColumns(c)
		}
	}
	return a.record(ctx, name, t, false)
}

func (a *ddlApplier) exists(name string) bool {
	v := a.h.before(name, a.at)
	return v != nil && (v.Schema != nil || v.Unknown)
}

func keyColumns(c *ast.Constraint) []string {
	var out []string
	for _, k := range c.Keys {
		if k.Column != nil {
			out = append(out, k.Column.Name.O)
		}
	}
	return out
}

func (a *ddlApplier) tableOption(t *tableSchema, o *ast.TableOption) {
	switch o.Tp {
	case ast.TableOptionCharset:
		t.Charset = strings.ToLower(o.StrValue)
	case ast.TableOptionCollate:
		if cs := a.collate(o.StrValue); cs != "" {
			t.Charset = cs
		}
	}
}

func (a *ddlApplier) dbOptions(ctx context.Context, db string, opts []*ast.DatabaseOption) error {
	if a.h.base == nil {
		return nil
	}
	for _, o := range opts {
		cs := ""
		switch o.Tp {
		case ast.DatabaseOptionCharset:
			cs = strings.ToLower(o.Value)
		case ast.DatabaseOptionCollate:
			cs = a.collate(o.Value)
		}
		if cs != "" {
			if a.h.base.DBCharsets == nil {
				a.h.base.DBCharsets = map[string]string{}
			}
			a.h.base.DBCharsets[db] = cs
			return a.h.saveBase(ctx)
		}
	}
	return nil
}

// column turns a column definition into a schemaColumn; pk is set when
// the definition itself says PRIMARY KEY.
func (a *ddlApplier) column(t *tableSchema, c *ast.ColumnDef) (col schemaColumn, pk bool) {
	ft := c.Tp
	col = schemaColumn{Name: c.Name.Name.O, Type: strings.ToLower(ft.String()),
		Unsigned: pmysql.HasUnsignedFlag(ft.GetFlag()), Labels: slices.Clone(ft.GetElems())}
	cs := strings.ToLower(ft.GetCharset())
	for _, o := range c.Options {
		switch o.Tp {
		case ast.ColumnOptionPrimaryKey:
			pk = true
		case ast.ColumnOptionCollate:
			if x := a.collate(o.StrValue); x != "" && cs == "" {
				cs = x
			}
		}
	}
	if ft.GetCollate() != "" && cs == "" {
		cs = a.collate(ft.GetCollate())
	}
	switch ft.GetType() {
	case pmysql.TypeJSON:
		col.JSON, cs = a.mariadb, t.Charset
		if !a.mariadb {
			cs = ""
		}
	case pmysql.TypeVarchar, pmysql.TypeString, pmysql.TypeVarString, pmysql.TypeBlob, pmysql.TypeTinyBlob,
		pmysql.TypeMediumBlob, pmysql.TypeLongBlob, pmysql.TypeEnum, pmysql.TypeSet:
		if cs == "" {
			cs = t.Charset
		}
	default:
		cs = ""
	}
	col.Charset = cs
	return col, pk
}

func (a *ddlApplier) alter(ctx context.Context, s *ast.AlterTableStmt) error {
	name := a.name(s.Table)
	if a.h.has(name, a.at) {
		return nil
	}
	old, known := a.prev(name)
	if !known || old == nil {
		if len(a.h.tables[name]) == 0 && a.isCapturedName(name) {
			return a.record(ctx, name, nil, true) // read at its next row event
		}
		return nil // before the base snapshot: the first version stands in
	}
	t := old.clone()
	renamed := ""
	for _, sp := range s.Specs {
		if sp.Tp == ast.AlterTableRenameTable {
			renamed = a.name(sp.NewTable)
			continue
		}
		a.spec(t, sp)
	}
	if renamed != "" && renamed != name {
		if err := a.record(ctx, renamed, t, false); err != nil {
			return err
		}
		return a.tombstone(ctx, name)
	}
	return a.record(ctx, name, t, false)
}

func (a *ddlApplier) isCapturedName(name string) bool {
	db, table, _ := strings.Cut(name, ".")
	return a.captured(db, table)
}

// spec applies one ALTER TABLE clause to t; clauses that do not change
// columns, the key or the character set (indexes, partitions, engine) are
// left alone.
func (a *ddlApplier) spec(t *tableSchema, sp *ast.AlterTableSpec) {
	switch sp.Tp {
	case ast.AlterTableAddColumns:
		for _, c := range sp.NewColumns {
			col, pk := a.column(t, c)
			if sp.IfNotExists && t.column(col.Name) >= 0 {
				continue
			}
			insertColumn(t, col, sp.Position)
			if pk {
				t.Key = []string{col.Name}
			}
		}
	case ast.AlterTableDropColumn:
		if i := t.column(sp.OldColumnName.Name.O); i >= 0 {
			t.Key = slices.DeleteFunc(t.Key, func(k string) bool { return strings.EqualFold(k, t.Columns[i].Name) })
			t.Columns = slices.Delete(t.Columns, i, i+1)
		}
	case ast.AlterTableModifyColumn, ast.AlterTableChangeColumn:
		from := sp.NewColumns[0].Name.Name.O
		if sp.OldColumnName != nil {
			from = sp.OldColumnName.Name.O
		}
		if i := t.column(from); i >= 0 {
			col, _ := a.column(t, sp.NewColumns[0])
			t.Columns = slices.Delete(t.Columns, i, i+1)
			if sp.Position == nil || sp.Position.Tp == ast.ColumnPositionNone {
				t.Columns = slices.Insert(t.Columns, i, col)
			} else {
				insertColumn(t, col, sp.Position)
			}
			renameKey(t, from, col.Name)
		}
	case ast.AlterTableRenameColumn:
		if i := t.column(sp.OldColumnName.Name.O); i >= 0 {
			t.Columns[i].Name = sp.NewColumnName.Name.O
			renameKey(t, sp.OldColumnName.Name.O, sp.NewColumnName.Name.O)
		}
	case ast.AlterTableAddConstraint:
		if sp.Constraint != nil && sp.Constraint.Tp == ast.ConstraintPrimaryKey {
			t.Key = keyColumns(sp.Constraint)
		}
	case ast.AlterTableDropPrimaryKey:
		t.Key = nil
	case ast.AlterTableOption:
		a.alterOptions(t, sp.Options)
	}
}

// alterOptions: CONVERT TO CHARACTER SET changes every text column; a new
// default character set only columns added later.
func (a *ddlApplier) alterOptions(t *tableSchema, opts []*ast.TableOption) {
	for _, o := range opts {
		a.tableOption(t, o)
		if o.Tp == ast.TableOptionCharset && o.UintValue == ast.TableOptionCharsetWithConvertTo {
			for i, c := range t.Columns {
				if c.Charset != "" && c.Charset != "binary" {
					t.Columns[i].Charset = t.Charset
				}
			}
		}
	}
}

func renameKey(t *tableSchema, from, to string) {
	for i, k := range t.Key {
		if strings.EqualFold(k, from) {
			t.Key[i] = to
		}
	}
}

func insertColumn(t *tableSchema, col schemaColumn, pos *ast.ColumnPosition) {
	at := len(t.Columns)
	if pos != nil {
		switch pos.Tp {
		case ast.ColumnPositionFirst:
			at = 0
		case ast.ColumnPositionAfter:
			if i := t.column(pos.RelativeColumn.Name.O); i >= 0 {
				at = i + 1
			}
		}
	}
	t.Columns = slices.Insert(t.Columns, at, col)
}

// rename records to and then drops from. Read again, both puts are kept
// (they change nothing already recorded): a kill between them left only
// the first durable.
func (a *ddlApplier) rename(ctx context.Context, from, to string) error {
	src, known := a.prev(from)
	if err := a.record(ctx, to, src.clone(), !known || src == nil); err != nil {
		return err
	}
	return a.tombstone(ctx, from)
}

func (a *ddlApplier) drop(ctx context.Context, name string) error {
	if a.h.has(name, a.at) {
		return nil
	}
	return a.tombstone(ctx, name)
}

func (a *ddlApplier) tombstone(ctx context.Context, name string) error {
	if len(a.h.tables[name]) == 0 {
		return nil
	}
	return a.h.put(ctx, schemaVersion{Table: name, At: a.at, Origin: originDDL, DDL: a.ddl}, false)
}

// mariadbTypes are MariaDB column types the TiDB parser does not know,
// with stand-ins that decode the same way (all are bytes in the binlog).
var mariadbTypes = map[string]string{
	"INET6": "BINARY(16)", "UUID": "BINARY(16)", "INET4": "BINARY(4)",
	"GEOMETRY": "LONGBLOB", "POINT": "LONGBLOB", "LINESTRING": "LONGBLOB", "POLYGON": "LONGBLOB",
	"MULTIPOINT": "LONGBLOB", "MULTILINESTRING": "LONGBLOB", "MULTIPOLYGON": "LONGBLOB",
	"GEOMETRYCOLLECTION": "LONGBLOB",
}

// ddlToken is an identifier, keyword or quoted word of a DDL statement.
var ddlToken = regexp.MustCompile("`(?:[^`]|``)*`|'(?:[^'\\\\]|\\\\.|'')*'|\"(?:[^\"\\\\]|\\\\.)*\"|[\\w$]+|[^\\s\\w]")

// rewriteMariaDBTypes replaces MariaDB-only type names where they stand as
// a column's type: right after the column's name and before what may
// follow a type. CREATE OR REPLACE TABLE becomes CREATE TABLE (a CREATE
// replaces the history's version anyway).
func rewriteMariaDBTypes(q string) string {
	locs := ddlToken.FindAllStringIndex(q, -1)
	var b strings.Builder
	last := 0
	word := func(i int) string {
		if i < 0 || i >= len(locs) {
			return ""
		}
		return strings.ToUpper(q[locs[i][0]:locs[i][1]])
	}
	for i, l := range locs {
		w := word(i)
		repl, ok := mariadbTypes[w]
		if w == "OR" && word(i-1) == "CREATE" && word(i+1) == "REPLACE" {
			b.WriteString(q[last:l[0]])
			last = locs[i+1][1]
			continue
		}
		if !ok || !isColumnName(word(i-1)) || !followsType(word(i+1)) {
			continue
		}
		b.WriteString(q[last:l[0]])
		b.WriteString(repl)
		last = l[1]
	}
	b.WriteString(q[last:])
	return b.String()
}

func isColumnName(w string) bool {
	switch w {
	case "", "(", ",", "COLUMN", "ADD", "MODIFY", "CHANGE", "DROP", "AFTER", "FIRST", "TABLE", "EXISTS", "KEY", "INDEX", "BY", "TO", "ON", "AS", "SET":
		return false
	}
	return true
}

func followsType(w string) bool {
	switch w {
	case "", ",", ")", ";", "NOT", "NULL", "DEFAULT", "PRIMARY", "UNIQUE", "KEY", "AFTER", "FIRST", "COMMENT", "CHECK",
		"INVISIBLE", "REFERENCES", "COLLATE", "CHARACTER", "CHARSET", "GENERATED", "AS", "REF_SYSTEM_ID", "SRID", "AUTO_INCREMENT":
		return true
	}
	return false
}
