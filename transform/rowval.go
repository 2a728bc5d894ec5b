package transform

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/ferry-cdc/ferry"
)

// rowVal is a ferry.Row seen by CEL as map(string, dyn), without copying:
// a column's value is converted only when a rule reads it, so a rule that
// reads two columns of a forty-column row converts two values.
type rowVal struct{ r ferry.Row }

var _ traits.Mapper = (*rowVal)(nil)

func (m *rowVal) index(key ref.Val) int {
	k, ok := key.(types.String)
	if !ok {
		return -1
	}
	for i, c := range m.r.Columns {
		if c == string(k) {
			return i
		}
	}
	return -1
}

// Find returns the value of a column.
func (m *rowVal) Find(key ref.Val) (ref.Val, bool) {
	if i := m.index(key); i >= 0 {
		return columnValue(m.r.Values[i]), true
	}
	return nil, false
}

func (m *rowVal) Get(key ref.Val) ref.Val {
	if v, ok := m.Find(key); ok {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func (m *rowVal) Contains(key ref.Val) ref.Val { return types.Bool(m.index(key) >= 0) }

func (m *rowVal) Size() ref.Val { return types.Int(len(m.r.Columns)) }

func (m *rowVal) Iterator() traits.Iterator { return &columnIterator{cols: m.r.Columns} }

func (m *rowVal) Type() ref.Type { return types.MapType }

func (m *rowVal) Value() any { return m.native() }

func (m *rowVal) native() map[string]any {
	out := make(map[string]any, len(m.r.Columns))
	for i, c := range m.r.Columns {
		out[c] = m.r.Values[i]
	}
	return out
}

func (m *rowVal) ConvertToNative(t reflect.Type) (any, error) {
	if t.Kind() == reflect.Map || t.Kind() == reflect.Interface {
		return types.DefaultTypeAdapter.NativeToValue(m.native()).ConvertToNative(t)
	}
	return nil, fmt.Errorf("a row cannot become a %v", t)
}

func (m *rowVal) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", t)
}

func (m *rowVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(traits.Mapper)
	if !ok || o.Size() != m.Size() {
		return types.False
	}
	for i, c := range m.r.Columns {
		ov, found := o.Find(types.String(c))
		if !found || ov.Equal(columnValue(m.r.Values[i])) != types.True {
			return types.False
		}
	}
	return types.True
}

type columnIterator struct {
	cols []string
	i    int
}

func (it *columnIterator) HasNext() ref.Val { return types.Bool(it.i < len(it.cols)) }

func (it *columnIterator) Next() ref.Val {
	if it.i >= len(it.cols) {
		return nil
	}
	it.i++
	return types.String(it.cols[it.i-1])
}

func (it *columnIterator) ConvertToNative(reflect.Type) (any, error) {
	return nil, fmt.Errorf("an iterator has no native form")
}
func (it *columnIterator) ConvertToType(ref.Type) ref.Val {
	return types.NewErr("iterators cannot be converted")
}
func (it *columnIterator) Equal(ref.Val) ref.Val { return types.False }
func (it *columnIterator) Type() ref.Type        { return types.IteratorType }
func (it *columnIterator) Value() any            { return nil }

// columnValue converts one column value (see ferry.Row for the types) to CEL.
// JSON columns are decoded so rules can navigate into them.
func columnValue(v any) ref.Val {
	switch x := v.(type) {
	case nil:
		return types.NullValue
	case string:
		return types.String(x)
	case int64:
		return types.Int(x)
	case uint64:
		return types.Uint(x)
	case float64:
		return types.Double(x)
	case float32:
		return types.Double(x)
	case bool:
		return types.Bool(x)
	case json.RawMessage:
		if d, err := decodeJSONValue(x); err == nil {
			return types.DefaultTypeAdapter.NativeToValue(d)
		}
		return types.String(x)
	case []byte:
		return types.Bytes(x)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}
