package transform

import (
	"strconv"

	"github.com/ferry-cdc/ferry"
)

// AppendChangeData appends the default `data` payload of a row change:
//
//	{"op","db","table","pk","before","after",
//	 "source":{"file","pos","gtid","server_id","ts_ms"},"tx":{"id","order"}}
//
// Unknown parts are null (gtid on a server without GTIDs, pk of a table
// without a primary key).
func AppendChangeData(dst []byte, c *ferry.Change) []byte {
	dst = appendDataHead(dst, c.Op, c.DB, c.Table)
	dst = appendRow(dst, c.Key)
	dst = append(dst, `,"before":`...)
	dst = appendRow(dst, c.Before)
	dst = append(dst, `,"after":`...)
	dst = appendRow(dst, c.After)
	return appendChangeTail(dst, c)
}

// appendDataHead appends the payload's `{"op":…,"db":…,"table":…,"pk":`.
func appendDataHead(dst []byte, op ferry.Op, db, table string) []byte {
	dst = append(dst, `{"op":`...)
	dst = appendString(dst, op.String())
	dst = append(dst, `,"db":`...)
	dst = appendString(dst, db)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, table)
	return append(dst, `,"pk":`...)
}

// appendChangeTail appends what follows the after image: the source and
// tx objects, and the payload's closing brace.
func appendChangeTail(dst []byte, c *ferry.Change) []byte {
	b := &c.Binlog
	dst = append(dst, `,"source":{"file":`...)
	dst = appendOptString(dst, b.File)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendUint(dst, b.Pos, 10)
	dst = append(dst, `,"gtid":`...)
	dst = appendOptString(dst, b.GTID)
	dst = append(dst, `,"server_id":`...)
	dst = strconv.AppendUint(dst, uint64(b.ServerID), 10)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, c.Time.UnixMilli(), 10)
	dst = append(dst, `},"tx":{"id":`...)
	dst = appendOptString(dst, b.TxID)
	dst = append(dst, `,"order":`...)
	dst = strconv.AppendInt(dst, int64(b.TxOrder), 10)
	return append(dst, "}}"...)
}

func appendOptString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
}
