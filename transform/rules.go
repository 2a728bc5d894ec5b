package transform

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types/ref"
)

// Rule is one transform rule as configured, an item of `transforms:`: the
// changes it matches and the CloudEvent it makes of them. Every expression
// is CEL; an empty expression means the attribute's default (see the
// README).
type Rule struct {
	Name string `yaml:"name"`
	// Path is where the rule is configured, e.g. "transforms[2]"; compile
	// errors are reported under it.
	Path   string
	From   []string   `yaml:"from"` // source names; empty means every source
	When   string     `yaml:"when"` // empty matches every change
	Event  EventExprs `yaml:"event"`
	To     []string   `yaml:"to"`
	Drop   bool       `yaml:"drop"`
	Outbox *Outbox    `yaml:"outbox"`
}

// EventExprs are the CEL expressions of a rule's CloudEvent attributes.
type EventExprs struct {
	ID              string            `yaml:"id"`
	Source          string            `yaml:"source"`
	Type            string            `yaml:"type"`
	Subject         string            `yaml:"subject"`
	Time            string            `yaml:"time"`
	DataSchema      string            `yaml:"dataschema"`
	DataContentType string            `yaml:"datacontenttype"`
	Data            string            `yaml:"data"`
	Extensions      map[string]string `yaml:"extensions"`
}

// CompileError is one problem in one expression of one rule.
type CompileError struct {
	Path string // e.g. "transforms[2].event.subject"
	Rule string
	Msg  string
}

func (e CompileError) Error() string { return e.Path + ": rule " + e.Rule + ": " + e.Msg }

// CompileErrors is every problem found in all rules.
type CompileErrors []CompileError

func (es CompileErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// extensionName is what the CloudEvents spec allows for extension names.
var extensionName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// reserved attributes cannot be set as extensions.
var reserved = map[string]bool{"id": true, "source": true, "specversion": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true, "data": true, "data_base64": true}

// rule is a compiled Rule.
type rule struct {
	name       string
	from       map[string]bool // nil: every source
	when       *expr           // nil: always
	id         *expr
	source     *expr
	typ        *expr
	subject    *expr
	time       *expr
	dataSchema *expr
	dataType   *expr
	data       *expr
	dataFields []dataField     // data as a map literal with constant keys, sorted
	sourceURI  *cetypes.URIRef // a literal source, parsed once
	extensions []extension
	to         []string
	drop       bool
	outbox     *outbox
}

// dataField is one entry of a data map literal, compiled on its own so the
// JSON is written field by field without building a CEL map per event.
type dataField struct {
	key string
	val *expr
}

type extension struct {
	name string
	prog *expr
}

// expr is a compiled expression; lit is set when the expression is a
// literal, so evaluating it per event is skipped.
type expr struct {
	prog cel.Program
	lit  ref.Val
	ast  *cel.Ast
}

// compiler compiles expressions, collecting every error.
type compiler struct {
	env  *cel.Env
	errs CompileErrors
}

// compile checks text and returns its program, or nil for empty text.
// Messages never quote text: it may hold expanded ${VAR} secrets.
// want lists the acceptable result types (dyn is always accepted).
func (c *compiler) compile(r Rule, field, text string, want ...*cel.Type) *expr {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	path := r.Path + "." + field
	ast, iss := c.env.Compile(text)
	if iss.Err() != nil {
		for _, e := range iss.Errors() {
			msg := strings.Replace(e.Message, " (in container '')", "", 1)
			c.errs = append(c.errs, CompileError{Path: path, Rule: r.Name,
				Msg: fmt.Sprintf("%s (line %d, column %d of the expression)", msg, e.Location.Line(), e.Location.Column()+1)})
		}
		return nil
	}
	if len(want) > 0 && !acceptable(ast.OutputType(), want) {
		names := make([]string, len(want))
		for i, w := range want {
			names[i] = typeName(w)
		}
		c.errs = append(c.errs, CompileError{Path: path, Rule: r.Name,
			Msg: fmt.Sprintf("evaluates to %s, want %s", typeName(ast.OutputType()), strings.Join(names, " or "))})
		return nil
	}
	prg, err := c.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		c.errs = append(c.errs, CompileError{Path: path, Rule: r.Name, Msg: err.Error()})
		return nil
	}
	e := &expr{prog: prg, ast: ast}
	if native := ast.NativeRep().Expr(); native.Kind() == celast.LiteralKind {
		e.lit = native.AsLiteral()
	}
	return e
}

// splitMapLiteral compiles each value of a map literal with distinct
// constant string keys on its own; nil when e is anything else.
func (c *compiler) splitMapLiteral(e *expr) []dataField {
	if e == nil || e.ast == nil {
		return nil
	}
	native := e.ast.NativeRep()
	if native.Expr().Kind() != celast.MapKind {
		return nil
	}
	var fields []dataField
	seen := map[string]bool{}
	for _, ent := range native.Expr().AsMap().Entries() {
		me := ent.AsMapEntry()
		key := me.Key()
		if me.IsOptional() || key.Kind() != celast.LiteralKind {
			return nil
		}
		k, ok := key.AsLiteral().Value().(string)
		if !ok || seen[k] {
			return nil
		}
		seen[k] = true
		sub := celast.NewCheckedAST(celast.NewAST(me.Value(), native.SourceInfo()), native.TypeMap(), native.ReferenceMap())
		prg, err := c.env.PlanProgram(sub, cel.EvalOptions(cel.OptOptimize))
		if err != nil {
			return nil
		}
		f := dataField{key: k, val: &expr{prog: prg}}
		if me.Value().Kind() == celast.LiteralKind {
			f.val.lit = me.Value().AsLiteral()
		}
		fields = append(fields, f)
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].key < fields[j].key })
	return fields
}

// typeName spells CEL types the way rule authors write them.
func typeName(t *cel.Type) string {
	switch {
	case t.IsExactType(cel.TimestampType):
		return "timestamp"
	case t.IsExactType(cel.DurationType):
		return "duration"
	}
	return t.String()
}

func acceptable(t *cel.Type, want []*cel.Type) bool {
	if t.IsExactType(cel.DynType) {
		return true
	}
	for _, w := range want {
		if t.IsExactType(w) {
			return true
		}
	}
	return false
}

// compileRules compiles every rule, reporting all problems at once.
func compileRules(rules []Rule) ([]*rule, error) {
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("build CEL environment: %w", err)
	}
	c := &compiler{env: env}
	var out []*rule
	for _, r := range rules {
		out = append(out, c.rule(r))
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return out, nil
}

func (c *compiler) rule(r Rule) *rule {
	s, ts := cel.StringType, cel.TimestampType
	cr := &rule{
		name:       r.Name,
		when:       c.compile(r, "when", r.When, cel.BoolType),
		id:         c.compile(r, "event.id", r.Event.ID, s),
		source:     c.compile(r, "event.source", r.Event.Source, s),
		typ:        c.compile(r, "event.type", r.Event.Type, s),
		subject:    c.compile(r, "event.subject", r.Event.Subject, s),
		time:       c.compile(r, "event.time", r.Event.Time, ts, s),
		dataSchema: c.compile(r, "event.dataschema", r.Event.DataSchema, s),
		dataType:   c.compile(r, "event.datacontenttype", r.Event.DataContentType, s),
		data:       c.compile(r, "event.data", r.Event.Data),
		to:         append([]string(nil), r.To...),
		drop:       r.Drop,
	}
	cr.dataFields = c.splitMapLiteral(cr.data)
	if cr.source != nil && cr.source.lit != nil {
		src, _ := cr.source.lit.Value().(string)
		if u := cetypes.ParseURIRef(src); src != "" && u != nil {
			cr.sourceURI = u
		} else {
			c.errs = append(c.errs, CompileError{Path: r.Path + ".event.source", Rule: r.Name, Msg: "the source is not a URI reference"})
		}
	}
	if len(r.From) > 0 {
		cr.from = map[string]bool{}
		for _, f := range r.From {
			cr.from[f] = true
		}
	}
	names := make([]string, 0, len(r.Event.Extensions))
	for n := range r.Event.Extensions {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic evaluation and error order
	for _, n := range names {
		path := "event.extensions." + n
		if !extensionName.MatchString(n) || reserved[n] {
			c.errs = append(c.errs, CompileError{Path: r.Path + "." + path, Rule: r.Name,
				Msg: fmt.Sprintf("invalid extension name %q: lower-case letters and digits, at most 20, not a CloudEvents attribute", n)})
			continue
		}
		if prg := c.compile(r, path, r.Event.Extensions[n]); prg != nil {
			cr.extensions = append(cr.extensions, extension{name: n, prog: prg})
		}
	}
	if r.Outbox != nil {
		ob, err := newOutbox(r.Outbox)
		if err != nil {
			c.errs = append(c.errs, CompileError{Path: r.Path + ".outbox", Rule: r.Name, Msg: err.Error()})
		}
		cr.outbox = ob
	}
	if r.Drop && (len(r.To) > 0 || r.Outbox != nil) {
		c.errs = append(c.errs, CompileError{Path: r.Path + ".drop", Rule: r.Name, Msg: "a drop rule cannot also have to: or outbox:"})
	}
	return cr
}
