package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// snapshotPlan is how a backfill reads one table by keyset chunks and turns
// the result rows into ferry.Rows equal to what the binlog path emits for
// the same data (the same Go types, the same text for temporal values).
type snapshotPlan struct {
	db, table string
	keyCols   []string // the key the chunks page by, in index order
	primary   bool     // keyCols is the primary key

	// selectCols are the columns read, in table order: those that may
	// leave Ferry (exclude_columns removed, which never matches a key
	// column). An excluded column is never read.
	selectCols []string
	selectExpr []string // how each is selected (see selectExpression)
	decode     []snapDecoder
	// temporal is the kind of each selected DATE/DATETIME/TIMESTAMP/TIME
	// column, read as the binary protocol's bytes (snaptime.go), and fsp
	// its fractional digits; notTemporal for the others.
	temporal []temporalKind
	fsp      []int
	rowIdx   []int    // selected columns kept in the row (exclude_columns removed)
	rowCols  []string // their names
	keyIdx   []int    // selected index of each key column
	keyRow   []int    // row index of each key column (a key column is never excluded)
	// where is the backfill's condition rendered from its syntax tree
	// (renderWhere); empty for every row.
	where string
}

// snapDecoder turns one non-NULL result value into the contract's type.
// Text is carved from a (see textArena): the strings of a chunk share a few
// blocks instead of one allocation each.
type snapDecoder func(v *gomysql.FieldValue, a *textArena) any

// columnInfo is one row of information_schema.COLUMNS.
type columnInfo struct {
	name, dataType, columnType, charset string
	fsp                                 int
	nullable                            bool
}

// errNoKey means a table has neither a primary key nor a usable unique key.
var errNoKey = errors.New("the table has no primary key: pass the columns of a unique NOT NULL key (--key, or snapshot_keys in the source config)")

// loadSnapshotPlan reads the table's columns and key from information_schema.
// key, when set, names the unique key to page by; where, when set, is the
// user's condition, checked against the table's columns and rendered.
func loadSnapshotPlan(conn *client.Conn, f *filter, flavor, db, table string, key []string, where string) (*snapshotPlan, error) {
	cols, err := tableColumns(conn, db, table)
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%s.%s does not exist (or the user cannot see it)", db, table)
	}
	keyCols, primary, err := chooseKey(conn, db, table, key, cols)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", db, table, err)
	}
	var jsonCols map[string]bool
	if flavor == gomysql.MariaDBFlavor {
		if jsonCols, err = mariadbJSONColumns(conn, db, table); err != nil {
			return nil, err
		}
	}
	p, err := newSnapshotPlan(f, db, table, cols, keyCols, jsonCols)
	if err != nil {
		return nil, err
	}
	p.primary = primary
	if where != "" {
		if p.where, err = renderWhere(where, p.whereColumns(f, cols)); err != nil {
			return nil, ferry.Invalid("where", "%w", err)
		}
	}
	return p, nil
}

// newSnapshotPlan selects the columns that may leave Ferry and the key. A
// key column that exclude_columns matches is refused: every event carries
// its key, so the value would leave Ferry anyway.
func newSnapshotPlan(f *filter, db, table string, cols []columnInfo, keyCols []string, jsonCols map[string]bool) (*snapshotPlan, error) {
	for _, k := range keyCols {
		if !f.column(db, table, k) {
			return nil, excludedKeyError(db, table, k)
		}
	}
	p := &snapshotPlan{db: db, table: table, keyCols: keyCols}
	for _, c := range cols {
		if !f.column(db, table, c.name) {
			continue // never read: an excluded column cannot leave by this path
		}
		p.rowIdx = append(p.rowIdx, len(p.selectCols))
		p.rowCols = append(p.rowCols, c.name)
		p.selectCols = append(p.selectCols, c.name)
		p.selectExpr = append(p.selectExpr, selectExpression(c))
		p.decode = append(p.decode, snapshotDecoder(c, jsonCols[c.name]))
		p.temporal = append(p.temporal, temporalKindOf(c.dataType))
		p.fsp = append(p.fsp, c.fsp)
	}
	for _, k := range p.keyCols {
		p.keyIdx = append(p.keyIdx, slices.Index(p.selectCols, k))
		p.keyRow = append(p.keyRow, slices.Index(p.rowCols, k))
	}
	return p, nil
}

// whereColumns resolves the columns a condition names: any of the table's,
// case-insensitively as MySQL does, flagging those exclude_columns removes.
func (p *snapshotPlan) whereColumns(f *filter, cols []columnInfo) whereColumns {
	return func(name string) (string, bool, bool) {
		for _, c := range cols {
			if strings.EqualFold(c.name, name) {
				return c.name, !f.column(p.db, p.table, c.name), true
			}
		}
		return "", false, false
	}
}

func tableColumns(conn *client.Conn, db, table string) ([]columnInfo, error) {
	r, err := conn.Execute(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, ''),
		COALESCE(DATETIME_PRECISION, 0), IS_NULLABLE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s.%s: %w", db, table, err)
	}
	cols := make([]columnInfo, len(r.Values))
	for i := range r.Values {
		c := &cols[i]
		c.name, _ = r.GetString(i, 0)
		c.dataType, _ = r.GetString(i, 1)
		c.columnType, _ = r.GetString(i, 2)
		c.charset, _ = r.GetString(i, 3)
		fsp, _ := r.GetInt(i, 4)
		c.fsp = int(min(max(fsp, 0), 6))
		nullable, _ := r.GetString(i, 5)
		c.nullable = nullable == "YES"
		c.dataType = strings.ToLower(c.dataType)
	}
	return cols, nil
}

// chooseKey returns the primary key, or checks that key is a unique index
// of NOT NULL columns (NULLs would let rows share a key).
func chooseKey(conn *client.Conn, db, table string, key []string, cols []columnInfo) ([]string, bool, error) {
	r, err := conn.Execute(`SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX`, db, table)
	if err != nil {
		return nil, false, fmt.Errorf("read keys: %w", err)
	}
	indexes := map[string][]string{}
	for i := range r.Values {
		name, _ := r.GetString(i, 0)
		col, _ := r.GetString(i, 1)
		indexes[name] = append(indexes[name], col)
	}
	if len(key) == 0 {
		if pk, ok := indexes["PRIMARY"]; ok {
			return pk, true, nil
		}
		return nil, false, errNoKey
	}
	for name, idx := range indexes {
		if len(idx) != len(key) || !sameSet(idx, key) {
			continue
		}
		for _, c := range cols {
			if slices.Contains(idx, c.name) && c.nullable {
				return nil, false, fmt.Errorf("key column %s is nullable; a backfill key must be NOT NULL", c.name)
			}
		}
		return idx, name == "PRIMARY", nil
	}
	return nil, false, fmt.Errorf("no unique index on exactly (%s)", strings.Join(key, ", "))
}

func sameSet(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// snapshotDecoder mirrors columnDecoder of the binlog path for values read
// through the binary protocol of a session whose time zone is UTC.
func snapshotDecoder(c columnInfo, isJSON bool) snapDecoder {
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return snapInteger
	case "year":
		return snapYear
	case "decimal", "numeric":
		return snapString
	case "float":
		return func(v *gomysql.FieldValue, _ *textArena) any { return float32(v.AsFloat64()) }
	case "double", "real":
		return func(v *gomysql.FieldValue, _ *textArena) any { return v.AsFloat64() }
	case "bit":
		return snapBit
	case "date", "datetime", "timestamp", "time":
		return nil // read as raw bytes: snapshotPlan.value renders them
	case "enum":
		return snapString
	case "set":
		return snapSet
	case "json":
		return snapJSON
	}
	switch {
	case c.charset == "" || c.charset == "binary":
		return func(v *gomysql.FieldValue, _ *textArena) any { return slices.Clone(v.AsString()) }
	case isJSON:
		return snapJSON
	}
	return snapString
}

func snapJSON(v *gomysql.FieldValue, _ *textArena) any { return jsonValue(slices.Clone(v.AsString())) }

func snapInteger(v *gomysql.FieldValue, _ *textArena) any {
	if v.Type == gomysql.FieldValueTypeUnsigned {
		return v.AsUint64()
	}
	return v.AsInt64()
}

// snapYear: YEAR is flagged unsigned in results but signed in the binlog
// path's values; 0000 is null like zero dates.
func snapYear(v *gomysql.FieldValue, _ *textArena) any {
	y := int64(v.AsUint64())
	if y == 0 {
		return nil
	}
	return y
}

func snapString(v *gomysql.FieldValue, a *textArena) any { return a.text(v.AsString()) }

// snapBit: BIT(n) arrives as big-endian bytes.
func snapBit(v *gomysql.FieldValue, _ *textArena) any {
	b := v.AsString()
	var buf [8]byte
	copy(buf[8-min(len(b), 8):], b[max(len(b)-8, 0):])
	return binary.BigEndian.Uint64(buf[:])
}

func snapSet(v *gomysql.FieldValue, a *textArena) any {
	s := a.text(v.AsString())
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// rawTemporal makes go-mysql hand over the temporal columns' values as
// the bytes the binary protocol carries (one length byte, then the fields),
// which it reads like a length-encoded string once the field says string,
// instead of formatting each with fmt.Sprintf. It runs after the result's
// columns were read, before its rows; a column of another type than the
// plan's (a change of the table since it was planned) fails the read.
func (p *snapshotPlan) rawTemporal(res *gomysql.Result) error {
	if len(res.Fields) != len(p.selectCols) {
		return fmt.Errorf("backfill of %s.%s: the chunk query returned %d columns, want %d", p.db, p.table, len(res.Fields), len(p.selectCols))
	}
	for i, k := range p.temporal {
		if k == notTemporal {
			continue
		}
		f := res.Fields[i]
		if !k.accepts(f.Type) {
			return fmt.Errorf("backfill of %s.%s: column %s has result type %d, not the planned temporal type", p.db, p.table, p.selectCols[i], f.Type)
		}
		f.Type = gomysql.MYSQL_TYPE_STRING
	}
	return nil
}

// row converts one result row into vals, which holds the row's values and
// then its key's (one allocation for both; the slices are capped so an
// append by a transform cannot reach the neighbour).
func (p *snapshotPlan) row(res []gomysql.FieldValue, vals []any, a *textArena) (row, key ferry.Row, err error) {
	n := len(p.rowIdx)
	for i, src := range p.rowIdx {
		if vals[i], err = p.value(res, src, a); err != nil {
			return row, key, err
		}
	}
	for i, r := range p.keyRow {
		vals[n+i] = vals[r]
	}
	row = ferry.Row{Columns: p.rowCols, Values: vals[:n:n]}
	key = ferry.Row{Columns: p.keyCols, Values: vals[n : n+len(p.keyRow) : n+len(p.keyRow)]}
	return row, key, nil
}

// rowWidth is the number of values row fills per result row.
func (p *snapshotPlan) rowWidth() int { return len(p.rowIdx) + len(p.keyRow) }

func (p *snapshotPlan) value(res []gomysql.FieldValue, i int, a *textArena) (any, error) {
	v := &res[i]
	if v.Type == gomysql.FieldValueTypeNull {
		return nil, nil
	}
	var (
		val any
		err error
	)
	switch p.temporal[i] {
	case notTemporal:
		return p.decode[i](v, a), nil
	case temporalDate:
		val, err = snapDate(v.AsString(), a)
	case temporalDateTime:
		val, err = snapDateTime(v.AsString(), p.fsp[i], "", a)
	case temporalTimestamp:
		val, err = snapDateTime(v.AsString(), p.fsp[i], "Z", a)
	case temporalTime:
		val, err = snapTime(v.AsString(), p.fsp[i], a)
	}
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", p.selectCols[i], err)
	}
	return val, nil
}

// keepKey copies the key columns of a result row into dst, reusing its
// byte buffers: only the chunk's last key is kept (rawKey).
func (p *snapshotPlan) keepKey(dst rawKey, res []gomysql.FieldValue) rawKey {
	if dst == nil {
		dst = make(rawKey, len(p.keyIdx))
	}
	for i, src := range p.keyIdx {
		v := &res[src]
		switch v.Type {
		case gomysql.FieldValueTypeSigned:
			dst[i] = rawValue{kind: 'i', i: v.AsInt64(), s: dst[i].s}
		case gomysql.FieldValueTypeUnsigned:
			dst[i] = rawValue{kind: 'u', u: v.AsUint64(), s: dst[i].s}
		case gomysql.FieldValueTypeFloat:
			dst[i] = rawValue{kind: 'f', f: v.AsFloat64(), s: dst[i].s}
		case gomysql.FieldValueTypeNull: // not in a NOT NULL key; kept as it was read
			dst[i] = rawValue{kind: 'n', s: dst[i].s}
		default:
			dst[i] = rawValue{kind: 's', s: append(dst[i].s[:0], v.AsString()...)}
		}
	}
	return dst
}

// rawKey turns a key kept by keepKey into the chunk's last key: its own
// copy, temporal values as go-mysql formats them (what checkpoints held
// before the snapshot read them raw, and what the next chunk compares).
func (p *snapshotPlan) rawKey(kept rawKey) (rawKey, error) {
	out := make(rawKey, len(kept))
	for i, v := range kept {
		switch v.kind {
		case 'n':
			out[i] = rawValue{kind: 's'}
			continue
		case 'i', 'u', 'f':
			out[i] = rawValue{kind: v.kind, i: v.i, u: v.u, f: v.f}
			continue
		}
		out[i] = rawValue{kind: 's', s: append([]byte(nil), v.s...)}
		if k := p.temporal[p.keyIdx[i]]; k != notTemporal {
			text, err := temporalKeyText(k, v.s)
			if err != nil {
				return nil, fmt.Errorf("key column %s: %w", p.keyCols[i], err)
			}
			out[i].s = append([]byte(nil), text...)
		}
	}
	return out, nil
}

// storedBytes are the MariaDB types a SELECT shows as text but the binlog
// carries as their stored bytes (a BINARY(n) there); the snapshot selects
// those bytes, so a backfilled row equals the streamed one (base64).
var storedBytes = map[string]int{"inet6": 16, "uuid": 16, "inet4": 4}

// selectExpression is how a column is selected by the snapshot.
func selectExpression(c columnInfo) string {
	if n, ok := storedBytes[c.dataType]; ok {
		return fmt.Sprintf("CAST(%s AS BINARY(%d))", quoteName(c.name), n)
	}
	return quoteName(c.name)
}

// tableName is the table's quoted DB.TABLE.
func (p *snapshotPlan) tableName() string { return quoteName(p.db) + "." + quoteName(p.table) }

// countSQL counts the rows the backfill reads.
func (p *snapshotPlan) countSQL() string {
	q := "SELECT COUNT(*) FROM " + p.tableName()
	if p.where != "" {
		q += " WHERE (" + p.where + ")"
	}
	return q
}

// quoteName quotes an identifier for MySQL.
func quoteName(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// chunkSQL is the query of a chunk: after is false for the first one.
func (p *snapshotPlan) chunkSQL(after bool, limit int) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(p.selectExpr, ", "))
	b.WriteString(" FROM " + p.tableName())
	var conds []string
	if p.where != "" {
		conds = append(conds, "("+p.where+")")
	}
	if after {
		conds = append(conds, "("+p.keysetCondition()+")")
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	b.WriteString(" ORDER BY ")
	for i, k := range p.keyCols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteName(k))
	}
	b.WriteString(" LIMIT " + strconv.Itoa(limit))
	return b.String()
}

// keysetCondition is "key > last" spelled out per column, (a > ?) OR (a = ?
// AND b > ?) ..., which every server's range optimizer turns into index
// ranges.
func (p *snapshotPlan) keysetCondition() string {
	var terms []string
	for i := range p.keyCols {
		var parts []string
		for j := 0; j < i; j++ {
			parts = append(parts, quoteName(p.keyCols[j])+" = ?")
		}
		parts = append(parts, quoteName(p.keyCols[i])+" > ?")
		terms = append(terms, "("+strings.Join(parts, " AND ")+")")
	}
	return strings.Join(terms, " OR ")
}

// keysetArgs are the arguments of keysetCondition for the last key read.
func keysetArgs(last rawKey) []any {
	var args []any
	for i := range last {
		for j := 0; j <= i; j++ {
			args = append(args, last[j].arg())
		}
	}
	return args
}
