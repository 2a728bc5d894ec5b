package mysql

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// tablePlan is how the rows of one table map are turned into ferry.Rows:
// which columns are kept, and the decoder of each. It is built from the
// TABLE_MAP event that precedes the rows (the metadata of their own time)
// and reused while later table maps of the same table id are identical.
type tablePlan struct {
	db, table string
	included  bool

	// the table map the plan was built from, to detect a changed table
	colTypes []byte
	colMeta  []uint16
	names    [][]byte

	columns []string // kept columns, in table order
	srcIdx  []int    // raw index of each kept column
	decode  []decodeFunc

	allDecode []decodeFunc // every column's decoder, by raw index

	keyColumns []string // primary key, in key order
	keyIdx     []int
	keyDecode  []decodeFunc

	// bin decodes each column from the event's bytes (binrows.go); nil
	// when a column's type is left to go-mysql.
	bin []binCol
}

func (p *tablePlan) matches(tm *replication.TableMapEvent) bool {
	return p.db == string(tm.Schema) && p.table == string(tm.Table) &&
		bytes.Equal(p.colTypes, tm.ColumnType) && slices.Equal(p.colMeta, tm.ColumnMeta) &&
		slices.EqualFunc(p.names, tm.ColumnName, bytes.Equal)
}

// absent marks the columns a row image leaves out (binlog_row_image
// MINIMAL or NOBLOB, settable per session); nil for a full image.
type absent []bool

// absentColumns turns go-mysql's skipped column indexes into a mask.
func absentColumns(n int, skipped []int) absent {
	if len(skipped) == 0 {
		return nil
	}
	a := make(absent, n)
	for _, i := range skipped {
		if i >= 0 && i < n {
			a[i] = true
		}
	}
	return a
}

func (a absent) has(i int) bool { return a != nil && i < len(a) && a[i] }

// row decodes one raw row image; columns the image left out are left out
// of the row too, never made null.
func (p *tablePlan) row(raw []any, miss absent) ferry.Row {
	if miss == nil {
		vals := make([]any, len(p.srcIdx))
		for i, src := range p.srcIdx {
			if v := raw[src]; v != nil {
				vals[i] = p.decode[i](v)
			}
		}
		return ferry.Row{Columns: p.columns, Values: vals}
	}
	cols := make([]string, 0, len(p.srcIdx))
	vals := make([]any, 0, len(p.srcIdx))
	for i, src := range p.srcIdx {
		if miss.has(src) {
			continue
		}
		var v any
		if raw[src] != nil {
			v = p.decode[i](raw[src])
		}
		cols, vals = append(cols, p.columns[i]), append(vals, v)
	}
	return ferry.Row{Columns: cols, Values: vals}
}

// key decodes the primary key of a row change; zero without a key. Each
// key column comes from the first image that holds it: an UPDATE logged
// with a MINIMAL image has the key only in its before image.
func (p *tablePlan) key(images [][]any, miss []absent) ferry.Row {
	if len(p.keyIdx) == 0 {
		return ferry.Row{}
	}
	vals := make([]any, len(p.keyIdx))
	for i, src := range p.keyIdx {
		for img := range images {
			if miss[img].has(src) {
				continue
			}
			if v := images[img][src]; v != nil {
				vals[i] = p.keyDecode[i](v)
			}
			break
		}
	}
	return ferry.Row{Columns: p.keyColumns, Values: vals}
}

// keyChanged reports whether an UPDATE's before and after images differ
// in a primary-key column both hold (false for tables without a key).
func (p *tablePlan) keyChanged(before, after []any, missBefore, missAfter absent) bool {
	for _, i := range p.keyIdx {
		if !missBefore.has(i) && !missAfter.has(i) && !sameRaw(before[i], after[i]) {
			return true
		}
	}
	return false
}

// sameRaw compares two raw values as go-mysql decoded them; the common key
// types are compared without reflection.
func sameRaw(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case nil, int8, int16, int32, int64, uint8, uint16, uint32, uint64, int, float32, float64:
		return a == b
	}
	return reflect.DeepEqual(a, b)
}

// planner builds and caches table plans.
type planner struct {
	flavor   string
	charsets charsets
	filter   *filter
	// schemas is the schema history (nil: none, the binlog must carry full
	// metadata); readTable reads today's information_schema for it. at is
	// the position of the rows event being planned.
	schemas   *schemaHistory
	readTable catalogReader
	at        position
	warn      func(key, msg string, args ...any)
	plans     map[uint64]*tablePlan
}

// errNoMetadata means the server did not log full table metadata.
var errNoMetadata = errors.New("the binlog carries no column names: set binlog_row_metadata=FULL on the server (SET GLOBAL binlog_row_metadata=FULL and in its config file)")

func (pl *planner) plan(tm *replication.TableMapEvent) (*tablePlan, error) {
	if p, ok := pl.plans[tm.TableID]; ok && p.matches(tm) {
		return p, nil
	}
	db, table := string(tm.Schema), string(tm.Table)
	p := &tablePlan{db: db, table: table, colTypes: slices.Clone(tm.ColumnType),
		colMeta: slices.Clone(tm.ColumnMeta), names: cloneNames(tm.ColumnName)}
	p.included = pl.filter.table(db, table)
	if p.included {
		if err := pl.build(p, tm); err != nil {
			err = fmt.Errorf("table %s.%s: %w", db, table, err)
			if errors.Is(err, errNoMetadata) {
				err = errFatal(err)
			}
			return nil, err
		}
	}
	if pl.plans == nil {
		pl.plans = map[uint64]*tablePlan{}
	}
	pl.plans[tm.TableID] = p
	return p, nil
}

func cloneNames(names [][]byte) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = bytes.Clone(n)
	}
	return out
}

func (pl *planner) build(p *tablePlan, tm *replication.TableMapEvent) error {
	cols, keyIdx, err := pl.describe(p, tm)
	if err != nil {
		return err
	}
	decoders := make([]decodeFunc, len(cols))
	p.allDecode = decoders
	for i, c := range cols {
		decoders[i] = pl.columnDecoder(tm, i, c)
		if pl.filter.column(p.db, p.table, c.name) {
			p.columns = append(p.columns, c.name)
			p.srcIdx = append(p.srcIdx, i)
			p.decode = append(p.decode, decoders[i])
		}
	}
	p.bin = make([]binCol, len(cols))
	for i, c := range cols {
		if p.bin[i] = binColumn(tm, i, c, decoders[i]); p.bin[i].kind == binUnsupported {
			p.bin = nil
			break
		}
	}
	for _, k := range keyIdx {
		if !pl.filter.column(p.db, p.table, cols[k].name) {
			return errFatal(excludedKeyError(p.db, p.table, cols[k].name))
		}
		p.keyColumns = append(p.keyColumns, cols[k].name)
		p.keyIdx = append(p.keyIdx, k)
		p.keyDecode = append(p.keyDecode, decoders[k])
	}
	return nil
}

// excludedKeyError refuses an exclude_columns pattern that matches a key
// column: every event carries its key (pk, partition key, snapshot ids),
// so the column would leave Ferry anyway.
func excludedKeyError(db, table, column string) error {
	return fmt.Errorf("exclude_columns matches %s.%s.%s, a column of its key: every event carries the key (pk, partitionkey), "+
		"so it cannot be excluded; exclude the table, or narrow the pattern", db, table, column)
}

func (pl *planner) columnDecoder(tm *replication.TableMapEvent, i int, c colInfo) decodeFunc {
	typ, meta := tm.ColumnType[i], tm.ColumnMeta[i]
	switch {
	case tm.IsEnumColumn(i):
		return enumValue(c.labels)
	case tm.IsSetColumn(i):
		return setValue(c.labels)
	}
	switch typ {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24,
		gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		if c.unsigned {
			return unsignedInt(intBits[typ])
		}
		return signedInt
	case gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL:
		return decimalValue
	case gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		return passThrough
	case gomysql.MYSQL_TYPE_BIT:
		return bitValue
	case gomysql.MYSQL_TYPE_YEAR:
		return yearValue
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		return dateValue
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		return datetimeValue(fsp(typ, meta))
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		return timestampValue(fsp(typ, meta))
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		return timeValue(fsp(typ, meta))
	case gomysql.MYSQL_TYPE_JSON:
		return jsonValue
	case gomysql.MYSQL_TYPE_GEOMETRY, gomysql.MYSQL_TYPE_VECTOR:
		return binaryValue // WKB with the 4-byte SRID prefix, base64
	}
	return stringDecoder(typ, meta, c)
}

// unsignedColumns reads the table map's signedness bitmap: one bit per
// numeric column, in column order. Which columns count differs by server:
// MariaDB gives YEAR a bit too (its YEAR is a TINYINT underneath), MySQL
// does not. go-mysql's UnsignedMap skips YEAR always, which shifted every
// later column's bit on MariaDB: an INT UNSIGNED after a YEAR decoded as
// signed (-1 for 4294967295).
func unsignedColumns(tm *replication.TableMapEvent, flavor string) map[int]bool {
	if len(tm.SignednessBitmap) == 0 {
		return nil
	}
	out := map[int]bool{}
	bit := 0
	for i, typ := range tm.ColumnType {
		switch typ {
		case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
			gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE:
		case gomysql.MYSQL_TYPE_YEAR:
			if flavor != gomysql.MariaDBFlavor {
				continue
			}
		default:
			continue
		}
		if bit/8 >= len(tm.SignednessBitmap) {
			break
		}
		out[i] = tm.SignednessBitmap[bit/8]&(0x80>>(bit%8)) != 0
		bit++
	}
	return out
}

var intBits = map[byte]uint{
	gomysql.MYSQL_TYPE_TINY: 8, gomysql.MYSQL_TYPE_SHORT: 16, gomysql.MYSQL_TYPE_INT24: 24,
	gomysql.MYSQL_TYPE_LONG: 32, gomysql.MYSQL_TYPE_LONGLONG: 64,
}

// fsp is the fractional-seconds precision of a temporal column: the
// metadata of the v2 (MySQL 5.6+) types; the old types have none.
func fsp(typ byte, meta uint16) int {
	switch typ {
	case gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2, gomysql.MYSQL_TYPE_TIME2:
		return int(min(meta, 6))
	}
	return 0
}

// stringDecoder handles CHAR, VARCHAR, TEXT and their binary twins, which
// differ only by character set.
func stringDecoder(typ byte, meta uint16, c colInfo) decodeFunc {
	switch {
	case c.json && !c.binary:
		return jsonValue
	case !c.binary:
		return textValue(c.dec)
	case typ == gomysql.MYSQL_TYPE_STRING:
		return fixedBinaryValue(fixedLength(meta))
	default:
		return binaryValue
	}
}

// fixedLength decodes the byte length of a CHAR/BINARY column from its
// metadata, the way the server packs it.
func fixedLength(meta uint16) int {
	if meta < 256 {
		return int(meta)
	}
	b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
	if b0&0x30 != 0x30 {
		return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return int(b1)
}
