package transform

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// appendCEL appends a CEL value as JSON. Map keys are sorted: a CEL map has
// no order, and the same change must always encode to the same bytes so
// that duplicates after a restart are identical.
func appendCEL(dst []byte, v ref.Val) ([]byte, error) {
	switch v := v.(type) {
	case types.Null:
		return append(dst, "null"...), nil
	case types.String:
		return appendString(dst, string(v)), nil
	case types.Int:
		return appendInt(dst, int64(v)), nil
	case types.Uint:
		return appendUint(dst, uint64(v)), nil
	case types.Double:
		return appendFloat(dst, float64(v), 64), nil
	case types.Bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case types.Bytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, '"'), nil
	case types.Timestamp:
		return appendString(dst, v.Time.UTC().Format(time.RFC3339Nano)), nil
	case types.Duration:
		return appendString(dst, v.Duration.String()), nil
	case *types.Err:
		return nil, v
	case traits.Mapper:
		return appendCELMap(dst, v)
	case traits.Lister:
		return appendCELList(dst, v)
	}
	// Values NativeToValue wrapped (json.RawMessage stays raw JSON).
	if raw, ok := v.Value().(json.RawMessage); ok {
		return append(dst, raw...), nil
	}
	return nil, fmt.Errorf("cannot encode a %s value as JSON", v.Type())
}

func appendCELList(dst []byte, l traits.Lister) ([]byte, error) {
	dst = append(dst, '[')
	it := l.Iterator()
	for i := 0; it.HasNext() == types.True; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendCEL(dst, it.Next()); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

func appendCELMap(dst []byte, m traits.Mapper) ([]byte, error) {
	keys, err := mapKeys(m)
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		if dst, err = appendCEL(dst, m.Get(types.String(k))); err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
	}
	return append(dst, '}'), nil
}

// mapKeys lists a map's keys, which must be strings. A CEL map literal
// holds a Go map[ref.Val]ref.Val; ranging over it directly avoids the
// reflection CEL's generic iterator uses.
func mapKeys(m traits.Mapper) ([]string, error) {
	if native, ok := m.Value().(map[ref.Val]ref.Val); ok {
		keys := make([]string, 0, len(native))
		for k := range native {
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map keys must be strings to become JSON")
			}
			keys = append(keys, string(ks))
		}
		return keys, nil
	}
	keys := make([]string, 0, int(m.Size().(types.Int)))
	it := m.Iterator()
	for it.HasNext() == types.True {
		k, ok := it.Next().(types.String)
		if !ok {
			return nil, fmt.Errorf("map keys must be strings to become JSON")
		}
		keys = append(keys, string(k))
	}
	return keys, nil
}
