package transform

import (
	"slices"
	"sync/atomic"

	"github.com/ferry-cdc/ferry"
)

// tableData is the JSON that the default data payloads of one table's
// changes share, encoded once instead of per row (escaping the same column
// names for every row, and looking the table up by its three names, were
// ~6 % of the CPU of a bulk load to a discarding sink; issue 18). What it
// writes is byte for byte what AppendChangeData writes
// (TestCachedChangeDataEqualsAppendChangeData).
type tableData struct {
	// heads[op] is `{"op":<op>,"db":<db>,"table":<table>,"pk":`.
	heads [8][]byte
	// The column keys of the last key, before and after image encoded:
	// images of one table share their columns unless they are partial.
	key, before, after atomic.Pointer[columnKeys]
}

// columnKeys is `"<column>":` per column, with a leading comma after the
// first.
type columnKeys struct {
	cols []string
	keys [][]byte
}

func newTableData(db, table string) *tableData {
	d := &tableData{}
	for op := range d.heads {
		d.heads[op] = appendDataHead(nil, ferry.Op(op), db, table)
	}
	return d
}

func newColumnKeys(cols []string) *columnKeys {
	k := &columnKeys{cols: slices.Clone(cols), keys: make([][]byte, len(cols))}
	for i, c := range cols {
		var b []byte
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, c)
		k.keys[i] = append(b, ':')
	}
	return k
}

// appendChangeData is AppendChangeData for a change of d's table.
func (d *tableData) appendChangeData(dst []byte, c *ferry.Change) []byte {
	if int(c.Op) >= len(d.heads) {
		return AppendChangeData(dst, c)
	}
	dst = append(dst, d.heads[c.Op]...)
	dst = appendRowKeys(dst, c.Key, &d.key)
	dst = append(dst, `,"before":`...)
	dst = appendRowKeys(dst, c.Before, &d.before)
	dst = append(dst, `,"after":`...)
	dst = appendRowKeys(dst, c.After, &d.after)
	return appendChangeTail(dst, c)
}

// appendRowKeys is appendRow with the column keys cached in slot, which is
// replaced when the row's columns differ (a schema change, partial images).
func appendRowKeys(dst []byte, r ferry.Row, slot *atomic.Pointer[columnKeys]) []byte {
	if r.IsZero() {
		return append(dst, "null"...)
	}
	k := slot.Load()
	if k == nil || !slices.Equal(k.cols, r.Columns) {
		k = newColumnKeys(r.Columns)
		slot.Store(k)
	}
	dst = append(dst, '{')
	for i := range r.Columns {
		dst = append(dst, k.keys[i]...)
		dst = appendValue(dst, r.Values[i])
	}
	return append(dst, '}')
}
