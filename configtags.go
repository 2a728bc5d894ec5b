package ferry

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tagOptions are the option names of a ferry tag.
var tagOptions = []string{"default", "enum", "fold", "required", "oneof", "example", "pattern"}

// A configuration struct declares each of its keys once, on the field:
//
//	// Mode is how events are encoded: binary (headers) or structured.
//	Mode string `yaml:"mode" ferry:"default=binary,enum=binary|structured"`
//
// The yaml tag names the key, the field's Go doc comment describes it (the
// JSON Schema, the README's key tables and `ferry config schema` take it
// from there), and the ferry tag states its rules, as comma-separated
// options:
//
//	default=V   the value of a key left out: text as it would be written in
//	            YAML (5s, 1048576, true); a list's items are separated by |
//	enum=a|b|c  the only values a string key, or each item of a string
//	            list, may take
//	fold        the enum matches in any letter case (POST, post)
//	required    the key must be set to a non-zero value
//	oneof=G     exactly one key of group G, within the same struct, is set
//	example=V   a valid value (list items separated by |): documentation,
//	            and the "e.g." of a missing required key; the examples of
//	            a block's required keys (and of each oneof group's first
//	            key) must make a valid block, which the schema tests load
//	pattern=RE  other values the key takes besides the enum, as a regular
//	            expression (ECMA-262 and Go alike); it takes the rest of
//	            the tag, so it comes last
//
// From these, Defaults fills a fresh configuration, CheckConfig validates
// one (then runs its Validate method, if it has one, for the rules no tag
// can state: keys that depend on each other, formats like URLs), and the
// loader in internal/config derives the schema and docs. Nested structs
// (a `tls:` block) carry their own tags; their keys are reported with the
// block's prefix ("tls.mode").
//
// FieldRules are the parsed ferry tag of one field.
type FieldRules struct {
	Default  string
	Enum     []string
	Fold     bool
	Required bool
	OneOf    string
	Example  string
	Pattern  string
	pattern  *regexp.Regexp
}

// Allows reports whether the enum (and pattern) of r accept s; a field
// without an enum accepts anything.
func (r FieldRules) Allows(s string) bool {
	if len(r.Enum) == 0 && r.pattern == nil {
		return true
	}
	for _, e := range r.Enum {
		if s == e || (r.Fold && strings.EqualFold(s, e)) {
			return true
		}
	}
	return r.pattern != nil && r.pattern.MatchString(s)
}

// ParseRules parses the ferry tag of a struct field.
func ParseRules(f reflect.StructField) (FieldRules, error) {
	var r FieldRules
	tag := f.Tag.Get("ferry")
	for tag != "" {
		var opt string
		if strings.HasPrefix(tag, "pattern=") {
			opt, tag = tag, ""
		} else {
			opt, tag, _ = strings.Cut(tag, ",")
		}
		name, value, hasValue := strings.Cut(opt, "=")
		switch {
		case name == "default" && hasValue:
			r.Default = value
		case name == "enum" && value != "":
			r.Enum = strings.Split(value, "|")
		case name == "fold" && !hasValue:
			r.Fold = true
		case name == "required" && !hasValue:
			r.Required = true
		case name == "oneof" && value != "":
			r.OneOf = value
		case name == "example" && hasValue:
			r.Example = value
		case name == "pattern" && value != "":
			re, err := regexp.Compile(value)
			if err != nil {
				return r, fmt.Errorf("field %s: ferry tag: pattern: %w", f.Name, err)
			}
			r.Pattern, r.pattern = value, re
		default:
			return r, fmt.Errorf("field %s: ferry tag: bad option %q (options: %s)", f.Name, opt, strings.Join(tagOptions, ", "))
		}
	}
	if (len(r.Enum) > 0 || r.Fold || r.Pattern != "") && elemKind(f.Type) != reflect.String {
		return r, fmt.Errorf("field %s: ferry tag: enum, fold and pattern need a string or a list of strings", f.Name)
	}
	if r.Default != "" {
		if err := setText(reflect.New(f.Type).Elem(), r.Default); err != nil {
			return r, fmt.Errorf("field %s: ferry tag: default: %w", f.Name, err)
		}
		for _, d := range splitList(f.Type, r.Default) {
			if !r.Allows(d) {
				return r, fmt.Errorf("field %s: ferry tag: default %q is not in the enum", f.Name, d)
			}
		}
	}
	return r, nil
}

func elemKind(t reflect.Type) reflect.Kind {
	if t.Kind() == reflect.Slice {
		return t.Elem().Kind()
	}
	return t.Kind()
}

func splitList(t reflect.Type, s string) []string {
	if t.Kind() == reflect.Slice {
		return strings.Split(s, "|")
	}
	return []string{s}
}

// taggedField is one yaml key of a struct with its rules.
type taggedField struct {
	index int
	key   string
	rules FieldRules
}

type structRules struct {
	fields []taggedField
	err    error // the first malformed tag
}

var rulesCache sync.Map // reflect.Type -> *structRules

// rulesOf returns the keyed fields of struct type t with their rules.
func rulesOf(t reflect.Type) *structRules {
	if r, ok := rulesCache.Load(t); ok {
		return r.(*structRules)
	}
	s := &structRules{}
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || key == "" || key == "-" {
			continue
		}
		r, err := ParseRules(f)
		if err != nil && s.err == nil {
			s.err = fmt.Errorf("%s: %w", t, err)
		}
		s.fields = append(s.fields, taggedField{index: i, key: key, rules: r})
	}
	rulesCache.Store(t, s)
	return s
}

// CheckTags reports the first malformed ferry tag in the configuration
// struct cfg points to, or in the structs it nests. Defaults and
// CheckConfig skip a malformed option; tests call CheckTags to catch it.
func CheckTags(cfg any) error {
	return walkTypes(reflect.TypeOf(cfg), map[reflect.Type]bool{})
}

func walkTypes(t reflect.Type, seen map[reflect.Type]bool) error {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	s := rulesOf(t)
	if s.err != nil {
		return s.err
	}
	for _, f := range s.fields {
		if err := walkTypes(t.Field(f.index).Type, seen); err != nil {
			return err
		}
	}
	return nil
}

// Defaults returns a new C with every default of its ferry tags set,
// nested structs included.
func Defaults[C any]() *C {
	c := new(C)
	applyDefaults(reflect.ValueOf(c).Elem())
	return c
}

func applyDefaults(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for _, f := range rulesOf(v.Type()).fields {
		fv := v.Field(f.index)
		if fv.Kind() == reflect.Struct {
			applyDefaults(fv)
			continue
		}
		if f.rules.Default != "" && fv.IsZero() {
			_ = setText(fv, f.rules.Default) // checked by ParseRules
		}
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// setText sets v from its text form, as in a default.
func setText(v reflect.Value, s string) error {
	if v.Kind() == reflect.Slice {
		items := strings.Split(s, "|")
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			if err := setText(out.Index(i), item); err != nil {
				return err
			}
		}
		v.Set(out)
		return nil
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case v.CanInt():
		i, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(i)
	case v.CanUint():
		u, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(u)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("a %s cannot have a default", v.Type())
	}
	return nil
}

// Validator is implemented by a configuration with rules its ferry tags
// cannot state. Validate reports every problem, joined with errors.Join,
// each a *FieldError naming its key.
type Validator interface {
	Validate() error
}

// CheckConfig validates the configuration struct cfg points to: the rules
// of its ferry tags (enum, required, oneof), then its Validate method. A
// key Validate reports on is reported with Validate's message only, being
// the more specific one. Every problem is a *FieldError, joined.
func CheckConfig(cfg any) error {
	var errs []error
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		errs = checkStruct(v, "")
	}
	val, ok := cfg.(Validator)
	if !ok {
		return errors.Join(errs...)
	}
	own := val.Validate()
	if own == nil {
		return errors.Join(errs...)
	}
	mine := map[string]bool{}
	for _, e := range leaves(own) {
		var fe *FieldError
		if errors.As(e, &fe) {
			mine[fe.Field] = true
		}
	}
	kept := errs[:0]
	for _, e := range errs {
		if !mine[e.(*FieldError).Field] {
			kept = append(kept, e)
		}
	}
	return errors.Join(append(kept, leaves(own)...)...)
}

// leaves flattens errors.Join trees.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func prefixed(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// checkStruct applies the tag rules of v's fields; prefix names v's key.
func checkStruct(v reflect.Value, prefix string) []error {
	var errs []error
	sr := rulesOf(v.Type())
	groups := map[string][]string{} // oneof group -> keys, in field order
	set := map[string][]string{}    // oneof group -> keys set
	for _, f := range sr.fields {
		fv := v.Field(f.index)
		key := prefixed(prefix, f.key)
		r := f.rules
		if r.OneOf != "" {
			groups[r.OneOf] = append(groups[r.OneOf], f.key)
			if !fv.IsZero() {
				set[r.OneOf] = append(set[r.OneOf], f.key)
			}
		}
		switch {
		case fv.Kind() == reflect.Struct:
			errs = append(errs, checkStruct(fv, key)...)
		case fv.Kind() == reflect.Pointer && !fv.IsNil() && fv.Elem().Kind() == reflect.Struct:
			errs = append(errs, checkStruct(fv.Elem(), key)...) // an optional block, when given
		case r.Required && fv.IsZero():
			errs = append(errs, &FieldError{Field: key, Err: requiredErr(r)})
		case fv.Kind() == reflect.String && fv.String() != "" && !r.Allows(fv.String()):
			errs = append(errs, &FieldError{Field: key, Err: enumErr(r, fv.String())})
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
			for i := range fv.Len() {
				if s := fv.Index(i).String(); !r.Allows(s) {
					errs = append(errs, &FieldError{Field: key + "[" + strconv.Itoa(i) + "]", Err: enumErr(r, s)})
				}
			}
		}
	}
	for _, f := range sr.fields {
		g := f.rules.OneOf
		if keys := groups[g]; g != "" && keys[0] == f.key && len(set[g]) != 1 {
			errs = append(errs, &FieldError{Field: prefixed(prefix, keys[0]),
				Err: fmt.Errorf("set %s, one of them", orList(keys))})
		}
	}
	return errs
}

func requiredErr(r FieldRules) error {
	if r.Example != "" {
		return fmt.Errorf("is required, e.g. %s", strings.ReplaceAll(r.Example, "|", ", "))
	}
	return errors.New("is required")
}

func enumErr(r FieldRules, got string) error {
	if r.Pattern != "" {
		return fmt.Errorf("must be %s, or match %s, not %q", orList(r.Enum), r.Pattern, got)
	}
	return fmt.Errorf("must be %s, not %q", orList(r.Enum), got)
}

// orList is "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// Example returns the smallest valid block of the configuration struct
// cfg points to, as YAML-ready values: the example of each required key
// and of the first key of each oneof group (list examples split at |).
func Example(cfg any) map[string]any {
	t := reflect.TypeOf(cfg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]any{}
	if t.Kind() != reflect.Struct {
		return out
	}
	groups := map[string]bool{}
	for _, f := range rulesOf(t).fields {
		r := f.rules
		first := r.OneOf != "" && !groups[r.OneOf]
		if r.OneOf != "" {
			groups[r.OneOf] = true
		}
		if (!r.Required && !first) || r.Example == "" {
			continue
		}
		if t.Field(f.index).Type.Kind() == reflect.Slice {
			var items []any
			for _, s := range strings.Split(r.Example, "|") {
				items = append(items, s)
			}
			out[f.key] = items
		} else {
			out[f.key] = r.Example
		}
	}
	return out
}
