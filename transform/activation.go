package transform

import (
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"

	"github.com/ferry-cdc/ferry"
)

// activation resolves rule variables for one change. Values are built on
// first use and kept for the other expressions of the same change, so a
// rule that never reads `before` never pays for it. One per Worker.
type activation struct {
	names *DefaultMapping // caches db and table as CEL values per table
	c     *ferry.Change
	vals  [numVars]ref.Val
	rows  [3]rowVal // before, after, key: handed out by pointer, no allocation
}

const (
	varID = iota
	varOp
	varDB
	varTable
	varBefore
	varAfter
	varKey
	varSource
	varTx
	varBody
	varHeaders
	varQuery
	varMethod
	varPath
	varRemote
	numVars
)

var varIndex = map[string]int{"id": varID, "op": varOp, "db": varDB, "table": varTable,
	"before": varBefore, "after": varAfter, "key": varKey, "source": varSource, "tx": varTx,
	"body": varBody, "headers": varHeaders, "query": varQuery, "method": varMethod, "path": varPath, "remote": varRemote}

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) bind(c *ferry.Change) {
	a.c = c
	clear(a.vals[:])
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := varIndex[name]
	if !ok {
		return nil, false
	}
	if v := a.vals[i]; v != nil {
		return v, true
	}
	v := a.build(i)
	a.vals[i] = v
	return v, true
}

var opValues = map[ferry.Op]ref.Val{}

func init() {
	for _, op := range []ferry.Op{ferry.OpCreate, ferry.OpUpdate, ferry.OpDelete, ferry.OpSnapshot, ferry.OpTruncate} {
		opValues[op] = types.String(op.String())
	}
}

func (a *activation) build(i int) ref.Val {
	c := a.c
	if i >= varBody || c.Request != nil && i != varID && i != varOp {
		return requestVar(c, i)
	}
	switch i {
	case varID:
		return types.String(c.ID)
	case varOp:
		return opValues[c.Op]
	case varDB, varTable:
		return a.names.tableNames(c).vals[i-varDB]
	case varBefore, varAfter, varKey:
		r := [...]ferry.Row{c.Before, c.After, c.Key}[i-varBefore]
		a.rows[i-varBefore] = rowVal{r}
		return &a.rows[i-varBefore]
	case varSource:
		b := c.Binlog
		return types.DefaultTypeAdapter.NativeToValue(map[string]any{
			"name": c.Source, "file": b.File, "pos": int64(b.Pos), "gtid": b.GTID,
			"server_id": int64(b.ServerID), "ts": c.Time.UTC(), "ts_ms": c.Time.UnixMilli(),
		})
	case varTx:
		return types.DefaultTypeAdapter.NativeToValue(map[string]any{"id": c.Binlog.TxID, "order": int64(c.Binlog.TxOrder)})
	}
	return types.NullValue
}

// requestVar resolves the request variables (empty for row changes) and
// the row variables of a request (empty: a request has no rows).
func requestVar(c *ferry.Change, i int) ref.Val {
	req := c.Request
	if req == nil {
		req = &ferry.Request{}
	}
	ad := types.DefaultTypeAdapter
	switch i {
	case varBody:
		if req.ContentType == "" || isJSONType(req.ContentType) {
			if v, err := decodeJSONValue(req.Data); err == nil {
				return ad.NativeToValue(v)
			}
		}
		return types.String(req.Data)
	case varHeaders:
		h := make(map[string]string, len(req.Header))
		for k, v := range req.Header {
			h[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		return ad.NativeToValue(h)
	case varQuery:
		q := make(map[string]string, len(req.Query))
		for k, v := range req.Query {
			q[k] = strings.Join(v, ",")
		}
		return ad.NativeToValue(q)
	case varMethod:
		return types.String(req.Method)
	case varPath:
		return types.String(req.Path)
	case varRemote:
		return types.String(req.RemoteAddr)
	case varSource:
		m := map[string]any{"name": c.Source, "ts": c.Time.UTC(), "ts_ms": c.Time.UnixMilli()}
		if k := req.Kafka; k != nil {
			m["topic"], m["partition"], m["offset"], m["key"] = k.Topic, int64(k.Partition), k.Offset, string(k.Key)
		}
		return ad.NativeToValue(m)
	case varDB, varTable:
		return types.String("")
	case varTx:
		return ad.NativeToValue(map[string]any{})
	}
	return &emptyRow
}

var emptyRow = rowVal{}
