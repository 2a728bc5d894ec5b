package mysql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/text/encoding"
)

// colInfo is what decoding a column needs beyond its binlog type: from the
// table map's full metadata when the server logs it, else from the schema
// history.
type colInfo struct {
	name     string
	unsigned bool
	dec      *encoding.Decoder // nil: the text is UTF-8 already
	binary   bool
	labels   []string // ENUM and SET
	json     bool
}

// describe returns the columns of the table map and the indexes of its
// primary key. A table map with column names (binlog_row_metadata=FULL)
// wins and is cross-checked against the history; one without is decoded
// with the history's schema of the event's time.
func (pl *planner) describe(p *tablePlan, tm *replication.TableMapEvent) ([]colInfo, []int, error) {
	names := tm.ColumnNameString()
	full := len(names) == int(tm.ColumnCount)
	var hist *tableSchema
	if pl.schemas != nil {
		var err error
		hist, err = pl.schemas.schemaAt(context.Background(), p.db, p.table, pl.at, tableMapFit(tm), pl.readTable)
		switch {
		case err == nil:
		case full && (isFatal(err) || errors.Is(err, errQuarantined)):
			pl.warnf("history:"+p.db+"."+p.table, "the schema history cannot describe the table; the binlog's column metadata is used",
				"table", p.db+"."+p.table, "error", err)
			hist = nil
		default:
			return nil, nil, err
		}
	}
	if !full {
		if hist == nil {
			return nil, nil, errNoMetadata
		}
		return pl.fromSchema(hist), schemaKeyIndexes(hist), nil
	}
	if hist != nil && !sameColumnNames(hist, names) {
		pl.warnf("mismatch:"+p.db+"."+p.table, "the schema history disagrees with the binlog's column metadata; the binlog's is used",
			"table", p.db+"."+p.table, "at", pl.at.String(), "history", schemaColumnNames(hist), "binlog", names)
	}
	jsonCols, err := pl.jsonColumns(p, hist, names)
	if err != nil {
		return nil, nil, err
	}
	unsigned, collations := unsignedColumns(tm, pl.flavor), tm.CollationMap()
	enums, sets := tm.EnumStrValueMap(), tm.SetStrValueMap()
	cols := make([]colInfo, len(names))
	for i, n := range names {
		dec, binary := pl.charsets.decoder(collations[i])
		labels := enums[i]
		if tm.IsSetColumn(i) {
			labels = sets[i]
		}
		cols[i] = colInfo{name: n, unsigned: unsigned[i], dec: dec, binary: binary, labels: labels, json: jsonCols[n]}
	}
	key := make([]int, len(tm.PrimaryKey))
	for i, k := range tm.PrimaryKey {
		key[i] = int(k)
	}
	return cols, key, nil
}

// jsonColumns: MariaDB's binlog does not mark JSON columns (they are
// LONGTEXT), so they come from the history when it agrees with the table
// map, else from today's information_schema.
func (pl *planner) jsonColumns(p *tablePlan, hist *tableSchema, names []string) (map[string]bool, error) {
	if pl.flavor != gomysql.MariaDBFlavor {
		return nil, nil
	}
	if hist == nil || !sameColumnNames(hist, names) {
		if pl.readTable == nil {
			return nil, nil
		}
		var err error
		if hist, err = pl.readTable(p.db, p.table); err != nil || hist == nil {
			return nil, err
		}
	}
	out := map[string]bool{}
	for _, c := range hist.Columns {
		out[c.Name] = c.JSON
	}
	return out, nil
}

func (pl *planner) fromSchema(t *tableSchema) []colInfo {
	cols := make([]colInfo, len(t.Columns))
	for i, c := range t.Columns {
		dec, binary := charsetDecoder(c.Charset)
		cols[i] = colInfo{name: c.Name, unsigned: c.Unsigned, dec: dec, binary: binary, labels: c.Labels, json: c.JSON}
	}
	return cols
}

// charsetDecoder is charsets.decoder by character set name.
func charsetDecoder(name string) (*encoding.Decoder, bool) {
	if name == "binary" {
		return nil, true
	}
	if enc, ok := charsetEncodings[name]; ok {
		return enc.NewDecoder(), false
	}
	return nil, false
}

func schemaKeyIndexes(t *tableSchema) []int {
	var out []int
	for _, k := range t.Key {
		if i := t.column(k); i >= 0 {
			out = append(out, i)
		}
	}
	return out
}

func schemaColumnNames(t *tableSchema) []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}

func sameColumnNames(t *tableSchema, names []string) bool {
	return slices.EqualFunc(schemaColumnNames(t), names, strings.EqualFold)
}

func (pl *planner) warnf(key, msg string, args ...any) {
	if pl.warn != nil {
		pl.warn(key, msg, args...)
	}
}

// tableMapFit checks a schema version against a table map: the column
// count, and each column's declared type against its binlog type.
func tableMapFit(tm *replication.TableMapEvent) schemaFit {
	return func(t *tableSchema) string {
		if len(t.Columns) != int(tm.ColumnCount) {
			return fmt.Sprintf("%d columns in the history, %d in the binlog", len(t.Columns), tm.ColumnCount)
		}
		for i, c := range t.Columns {
			typ := tm.ColumnType[i]
			switch {
			case tm.IsEnumColumn(i):
				typ = gomysql.MYSQL_TYPE_ENUM
			case tm.IsSetColumn(i):
				typ = gomysql.MYSQL_TYPE_SET
			}
			word := strings.ToLower(c.Type)
			if j := strings.IndexAny(word, "( "); j >= 0 {
				word = word[:j]
			}
			if want, known := declaredTypes[word]; known && !slices.Contains(want, typ) {
				return fmt.Sprintf("column %d, %s %s, has binlog type %d", i+1, c.Name, c.Type, typ)
			}
		}
		return ""
	}
}

// declaredTypes are the binlog types a declared type is logged as; types
// not listed are not checked.
var declaredTypes = func() map[string][]byte {
	blob := []byte{gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_JSON, gomysql.MYSQL_TYPE_GEOMETRY}
	fixed := []byte{gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_VAR_STRING}
	varying := []byte{gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING}
	m := map[string][]byte{
		"tinyint": {gomysql.MYSQL_TYPE_TINY}, "smallint": {gomysql.MYSQL_TYPE_SHORT}, "mediumint": {gomysql.MYSQL_TYPE_INT24},
		"int": {gomysql.MYSQL_TYPE_LONG}, "integer": {gomysql.MYSQL_TYPE_LONG}, "bigint": {gomysql.MYSQL_TYPE_LONGLONG},
		"decimal": {gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL}, "numeric": {gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_DECIMAL},
		"float": {gomysql.MYSQL_TYPE_FLOAT}, "double": {gomysql.MYSQL_TYPE_DOUBLE}, "real": {gomysql.MYSQL_TYPE_DOUBLE},
		"bit": {gomysql.MYSQL_TYPE_BIT}, "year": {gomysql.MYSQL_TYPE_YEAR},
		"date":      {gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE},
		"datetime":  {gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2},
		"timestamp": {gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2},
		"time":      {gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2},
		"char":      fixed, "binary": fixed, "inet6": fixed, "inet4": fixed, "uuid": fixed,
		"varchar": varying, "varbinary": varying,
		"enum": {gomysql.MYSQL_TYPE_ENUM}, "set": {gomysql.MYSQL_TYPE_SET},
	}
	for _, w := range []string{"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection"} {
		m[w] = blob
	}
	return m
}()
