package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder maps YAML nodes onto Go values strictly: unknown keys, duplicate
// keys, wrong kinds and invalid scalars are all errors, collected rather
// than stopping at the first. yaml.v3's own Node.Decode cannot reject
// unknown keys, hence this.
type decoder struct {
	depth    int                   // nesting of decode calls, bounded against alias cycles
	files    map[*yaml.Node]string // node -> file it came from
	expanded map[*yaml.Node]string // expanded scalar -> its original text
	pos      map[string]Pos        // key path -> where it was written
	errs     Errors
}

func (d *decoder) at(n *yaml.Node) Pos {
	return Pos{File: d.files[n], Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.at(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// display is how a scalar is quoted in messages: its original text when it
// was expanded, because the expanded value may be a secret.
func (d *decoder) display(n *yaml.Node) string {
	if orig, ok := d.expanded[n]; ok {
		return strconv.Quote(orig)
	}
	return strconv.Quote(n.Value)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return "a value " + strconv.Quote(n.Value)
	}
	return "an unexpected node"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// pair is one key/value of a mapping.
type pair struct{ key, value *yaml.Node }

// pairs returns a mapping's pairs with merge keys (`<<: *base`) applied:
// explicit keys win over merged ones.
func pairs(n *yaml.Node) []pair { return pairsSeen(n, map[*yaml.Node]bool{}) }

// pairsSeen skips mappings already being merged, so `<<: *self` cannot
// recurse forever.
func pairsSeen(n *yaml.Node, seen map[*yaml.Node]bool) []pair {
	if seen[n] {
		return nil
	}
	seen[n] = true
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			merged = append(merged, mergeSources(resolve(v), seen)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	keys := map[string]bool{}
	for _, p := range own {
		keys[p.key.Value] = true
	}
	for _, p := range merged {
		if !keys[p.key.Value] {
			keys[p.key.Value] = true
			own = append(own, p)
		}
	}
	return own
}

func mergeSources(v *yaml.Node, seen map[*yaml.Node]bool) []pair {
	switch v.Kind {
	case yaml.MappingNode:
		return pairsSeen(v, seen)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range v.Content {
			if item = resolve(item); item.Kind == yaml.MappingNode {
				out = append(out, pairsSeen(item, seen)...)
			}
		}
		return out
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeFor[time.Duration]()

// maxDepth bounds decoding depth; real configurations nest a handful deep.
const maxDepth = 32

// decode decodes n into v (addressable), recording errors under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n == nil {
		return
	}
	if d.depth >= maxDepth {
		d.errorf(n, path, "nested too deeply (an alias that refers to itself?)")
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) expectMapping(n *yaml.Node, path string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	if !isNull(n) {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
	}
	return false
}

// each walks a mapping's pairs, reporting duplicate keys and recording
// where each key was written.
func (d *decoder) each(n *yaml.Node, path string, fn func(key string, p pair)) {
	first := map[string]*yaml.Node{}
	for _, p := range pairs(n) {
		key := p.key.Value
		if prev, dup := first[key]; dup {
			d.errorf(p.key, join(path, key), "duplicate key (first set on line %d)", prev.Line)
			continue
		}
		first[key] = p.key
		d.pos[join(path, key)] = d.at(p.key)
		fn(key, p)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if !d.expectMapping(n, path) {
		return
	}
	fields := fieldsOf(v.Type())
	d.each(n, path, func(key string, p pair) {
		idx, ok := fields.index[key]
		switch {
		case !ok && len(fields.names) == 0:
			d.errorf(p.key, join(path, key), "unknown key: this block takes no keys")
			return
		case !ok:
			d.errorf(p.key, join(path, key), "unknown key%s (known: %s)", suggest(key, fields.names), strings.Join(fields.names, ", "))
			return
		}
		d.decode(p.value, v.Field(idx), join(path, key))
	})
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if !d.expectMapping(n, path) {
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.errorf(n, path, "internal: map keys must be strings")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	d.each(n, path, func(key string, p pair) {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.value, elem, join(path, key))
		v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
	})
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	items := n.Content
	switch {
	case n.Kind == yaml.SequenceNode:
	case isNull(n):
		return
	case n.Kind == yaml.ScalarNode && v.Type().Elem().Kind() == reflect.String:
		items = []*yaml.Node{n} // `to: console` means `to: [console]`
	default:
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		p := path + "[" + strconv.Itoa(i) + "]"
		d.pos[p] = d.at(resolve(item))
		d.decode(item, out.Index(i), p)
	}
	v.Set(out)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a single value, got %s", kindName(n))
		return
	}
	if isNull(n) {
		return // the zero value; validation reports required keys
	}
	s := n.Value
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
				d.errorf(n, path, "invalid duration %s: add a unit, like 5s or 250ms", d.display(n))
			} else {
				d.errorf(n, path, "invalid duration %s: want a number with a unit (ms, s, m, h)", d.display(n))
			}
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(n, path, "invalid boolean %s: want true or false", d.display(n))
		}
	case v.CanInt():
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "invalid integer %s%s", d.display(n), rangeHint(v.Type()))
			return
		}
		v.SetInt(i)
	case v.CanUint():
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v.OverflowUint(u) {
			d.errorf(n, path, "invalid integer %s%s", d.display(n), rangeHint(v.Type()))
			return
		}
		v.SetUint(u)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) {
			d.errorf(n, path, "invalid number %s", d.display(n))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "internal: cannot decode into %s", v.Type())
	}
}

func rangeHint(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		max := uint64(math.MaxUint64) >> (64 - t.Bits())
		return fmt.Sprintf(": want a whole number from 0 to %d", max)
	default:
		max := int64(math.MaxInt64) >> (64 - t.Bits())
		return fmt.Sprintf(": want a whole number from %d to %d", -max-1, max)
	}
}

// structFields indexes a struct's fields by yaml key.
type structFields struct {
	index map[string]int
	names []string // sorted, for messages
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if !sf.IsExported() || tag == "-" || tag == "" {
			continue
		}
		f.index[tag] = i
		f.names = append(f.names, tag)
	}
	sort.Strings(f.names)
	fieldCache.Store(t, f)
	return f
}

// suggest returns ` (did you mean "x"?)` for the closest known key.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := levenshtein(key, k); dist < bestDist && (dist <= 1 || len(k) >= 4) {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
