package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// The variables every row-change rule can use.
var rowVariables = []cel.EnvOption{
	cel.Variable("id", cel.StringType),    // the change's deterministic id
	cel.Variable("op", cel.StringType),    // create, update, delete, snapshot, truncate (request for webhooks)
	cel.Variable("db", cel.StringType),    // database (schema) name
	cel.Variable("table", cel.StringType), // table name
	cel.Variable("before", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("after", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("key", cel.MapType(cel.StringType, cel.DynType)),    // primary key columns
	cel.Variable("source", cel.MapType(cel.StringType, cel.DynType)), // name, file, pos, gtid, server_id, ts, ts_ms
	cel.Variable("tx", cel.MapType(cel.StringType, cel.DynType)),     // id, order
	// webhook requests
	cel.Variable("body", cel.DynType),                                    // parsed body (JSON, form, XML), else its text
	cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)), // lower-case names
	cel.Variable("query", cel.MapType(cel.StringType, cel.StringType)),
	cel.Variable("method", cel.StringType),
	cel.Variable("path", cel.StringType),
	cel.Variable("remote", cel.StringType), // the caller's address
}

// newEnv builds the CEL environment rules compile in: the variables above
// plus helpers for legacy data.
func newEnv() (*cel.Env, error) {
	opts := append([]cel.EnvOption{
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.Function("now", cel.Overload("now", nil, cel.TimestampType,
			cel.FunctionBinding(func(...ref.Val) ref.Val { return types.Timestamp{Time: time.Now().UTC()} }))),
	}, helperFunctions...)
	return cel.NewEnv(append(opts, rowVariables...)...)
}

// helperFunctions are the rule helpers whose result depends only on their
// arguments (now() is not one): sinks evaluate them again on every retry
// of an event and must build the same request.
var helperFunctions = []cel.EnvOption{
	// Legacy columns are nullable: hash and mask pass null through, so
	// `mask(after.card, 4)` needs no null check around it.
	cel.Function("hash", cel.Overload("hash_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.DynType,
		cel.BinaryBinding(nullSafe2(hashValue)))),
	cel.Function("mask", cel.Overload("mask_dyn_int", []*cel.Type{cel.DynType, cel.IntType}, cel.DynType,
		cel.BinaryBinding(nullSafe2(maskValue)))),
	cel.Function("without", cel.Overload("without_map_list", []*cel.Type{cel.MapType(cel.StringType, cel.DynType), cel.ListType(cel.StringType)},
		cel.MapType(cel.StringType, cel.DynType), cel.BinaryBinding(withoutKeys))),
	cel.Function("pick", cel.Overload("pick_map_list", []*cel.Type{cel.MapType(cel.StringType, cel.DynType), cel.ListType(cel.StringType)},
		cel.MapType(cel.StringType, cel.DynType), cel.BinaryBinding(pickKeys))),
	cel.Function("rename", cel.Overload("rename_map_map", []*cel.Type{cel.MapType(cel.StringType, cel.DynType), cel.MapType(cel.StringType, cel.StringType)},
		cel.MapType(cel.StringType, cel.DynType), cel.BinaryBinding(renameKeys))),
	cel.Function("json", cel.Overload("json_string", []*cel.Type{cel.StringType}, cel.DynType,
		cel.UnaryBinding(parseJSON))),
}

// nullSafe2 makes a binary helper return null for a null first argument.
func nullSafe2(f func(a, b ref.Val) ref.Val) func(a, b ref.Val) ref.Val {
	return func(a, b ref.Val) ref.Val {
		if a == types.NullValue {
			return types.NullValue
		}
		return f(a, b)
	}
}

// hash(value, salt) is the hex SHA-256 of the salt followed by the value's
// text (strings as they are, other values as JSON), for pseudonymizing
// identifiers consistently across events.
func hashValue(v, salt ref.Val) ref.Val {
	text, err := valueText(v)
	if err != nil {
		return types.NewErr("hash: %v", err)
	}
	h := sha256.New()
	h.Write([]byte(salt.(types.String)))
	h.Write([]byte(text))
	return types.String(hex.EncodeToString(h.Sum(nil)))
}

func valueText(v ref.Val) (string, error) {
	if s, ok := v.(types.String); ok {
		return string(s), nil
	}
	b, err := appendCEL(nil, v)
	return string(b), err
}

// mask(s, keep) keeps the last keep characters of s and replaces the rest
// with '*': mask("4111111111111111", 4) == "************1111".
func maskValue(s, keep ref.Val) ref.Val {
	sv, ok := s.(types.String)
	if !ok {
		return types.NewErr("mask: want a string, got %s", s.Type())
	}
	str, n := string(sv), int(keep.(types.Int))
	total := utf8.RuneCountInString(str)
	if n < 0 {
		return types.NewErr("mask: keep must not be negative, got %d", n)
	}
	if n >= total {
		return s
	}
	var b strings.Builder
	b.Grow(len(str))
	i := 0
	for _, r := range str {
		if i < total-n {
			b.WriteByte('*')
		} else {
			b.WriteRune(r)
		}
		i++
	}
	return types.String(b.String())
}

// filterMap copies the entries of m for which keep says so, renaming keys
// through rename when it is given.
func filterMap(m ref.Val, keep func(key string) bool, rename func(string) string) ref.Val {
	mapper, ok := m.(traits.Mapper)
	if !ok {
		return types.NewErr("expected a map, got %s", m.Type())
	}
	out := map[ref.Val]ref.Val{}
	it := mapper.Iterator()
	for it.HasNext() == types.True {
		k := it.Next()
		ks, ok := k.(types.String)
		if !ok || !keep(string(ks)) {
			continue
		}
		nk := k
		if rename != nil {
			nk = types.String(rename(string(ks)))
		}
		out[nk] = mapper.Get(k)
	}
	return types.NewRefValMap(types.DefaultTypeAdapter, out)
}

func stringSet(l ref.Val) (map[string]bool, error) {
	lister, ok := l.(traits.Lister)
	if !ok {
		return nil, fmt.Errorf("expected a list of names, got %s", l.Type())
	}
	set := map[string]bool{}
	it := lister.Iterator()
	for it.HasNext() == types.True {
		if s, ok := it.Next().(types.String); ok {
			set[string(s)] = true
		}
	}
	return set, nil
}

// without(m, ["ssn", "card"]) is m without those keys.
func withoutKeys(m, names ref.Val) ref.Val {
	set, err := stringSet(names)
	if err != nil {
		return types.NewErr("without: %v", err)
	}
	return filterMap(m, func(k string) bool { return !set[k] }, nil)
}

// pick(m, ["id", "total"]) is m with only those keys.
func pickKeys(m, names ref.Val) ref.Val {
	set, err := stringSet(names)
	if err != nil {
		return types.NewErr("pick: %v", err)
	}
	return filterMap(m, func(k string) bool { return set[k] }, nil)
}

// rename(m, {"cust_no": "customer_id"}) renames keys of m.
func renameKeys(m, renames ref.Val) ref.Val {
	rm, ok := renames.(traits.Mapper)
	if !ok {
		return types.NewErr("rename: expected a map of names")
	}
	return filterMap(m, func(string) bool { return true }, func(k string) string {
		if v, found := rm.Find(types.String(k)); found {
			if s, ok := v.(types.String); ok {
				return string(s)
			}
		}
		return k
	})
}

// json(s) parses JSON text held in a string column (common in legacy
// schemas) into a value rules can navigate.
func parseJSON(s ref.Val) ref.Val {
	v, err := decodeJSONValue([]byte(s.(types.String)))
	if err != nil {
		return types.NewErr("json: %v", err)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// decodeJSONValue decodes JSON keeping integers integral (encoding/json
// would make every number a float64, and 42 would compare as 42.0).
func decodeJSONValue(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return numbersToNative(v), nil
}

func numbersToNative(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbersToNative(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbersToNative(e)
		}
	}
	return v
}
