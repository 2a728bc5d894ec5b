// Package eventexpr compiles the CEL expressions sinks evaluate per event
// to name where it goes (a Kafka topic, a NATS subject) or to shape the
// request that carries it (the HTTP sink's request block).
//
// Variables: the event's id, source, type, subject, time, datacontenttype,
// extensions, data (parsed JSON as rules see it: whole numbers are ints;
// null when the data is not JSON), db and table (from a row change's
// default data, else ""), and event, the event's attributes as its
// structured JSON form holds them (specversion, id, source, type, and
// subject, time, datacontenttype, dataschema and each extension when set).
// The rules' deterministic helpers (hash, mask, without, pick, rename,
// json) are available; now() is not, so that a retried event gives the
// same result.
package eventexpr

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/ferry-cdc/ferry/transform"
)

var env = sync.OnceValues(func() (*cel.Env, error) {
	opts := append(transform.HelperFunctions(),
		cel.Variable("id", cel.StringType), cel.Variable("source", cel.StringType),
		cel.Variable("type", cel.StringType), cel.Variable("subject", cel.StringType),
		cel.Variable("time", cel.TimestampType), cel.Variable("datacontenttype", cel.StringType),
		cel.Variable("extensions", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("data", cel.DynType), cel.Variable("db", cel.StringType), cel.Variable("table", cel.StringType),
		cel.Variable("event", cel.MapType(cel.StringType, cel.DynType)),
	)
	return cel.NewEnv(opts...)
})

// CompileAs compiles expr and checks that its type is one of want (or dyn,
// checked when evaluated). A compile error is one line: CEL's messages
// with their line and column, never the expression (it may hold secrets).
func CompileAs(expr string, want ...*cel.Type) (cel.Program, error) {
	e, err := env()
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(expr)
	if iss.Err() != nil {
		// As rules do: never quote the expression, which may hold expanded
		// ${VAR} secrets.
		msgs := make([]string, 0, len(iss.Errors()))
		for _, ce := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%s (line %d, column %d of the expression)",
				strings.Replace(ce.Message, " (in container '')", "", 1), ce.Location.Line(), ce.Location.Column()+1))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	t := ast.OutputType()
	ok := t.IsExactType(cel.DynType)
	names := make([]string, len(want))
	for i, w := range want {
		ok = ok || t.IsExactType(w) || w.Kind() == t.Kind() && (w.Kind() == types.MapKind || w.Kind() == types.ListKind)
		names[i] = w.String()
	}
	if !ok {
		return nil, fmt.Errorf("evaluates to %s, want %s", t, strings.Join(names, " or "))
	}
	return e.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// Compile compiles expr, which must evaluate to a string.
func Compile(expr string) (cel.Program, error) { return CompileAs(expr, cel.StringType) }

// ErrNotString is returned by String for a result that is not a non-empty
// string.
var ErrNotString = errors.New("want a non-empty string")

// String evaluates p for one event.
func String(p cel.Program, e *event.Event) (string, error) {
	out, _, err := p.Eval(Bind(e))
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok || s == "" {
		return "", fmt.Errorf("gave %v, %w", out, ErrNotString)
	}
	return string(s), nil
}

// Activation resolves the variables of one event, building data and event
// on first use, once for all the expressions evaluated with it.
type Activation struct {
	e      *event.Event
	parsed bool
	data   any
	attrs  map[string]any
}

var _ interpreter.Activation = (*Activation)(nil)

// Bind returns the activation of e.
func Bind(e *event.Event) *Activation { return &Activation{e: e} }

// Parent implements interpreter.Activation.
func (a *Activation) Parent() interpreter.Activation { return nil }

// ResolveName implements interpreter.Activation.
func (a *Activation) ResolveName(name string) (any, bool) {
	e := a.e
	switch name {
	case "id":
		return e.ID(), true
	case "source":
		return e.Source(), true
	case "type":
		return e.Type(), true
	case "subject":
		return e.Subject(), true
	case "time":
		return e.Time(), true
	case "datacontenttype":
		return e.DataContentType(), true
	case "extensions":
		return e.Extensions(), true
	case "data":
		return a.parsedData(), true
	case "db", "table":
		if m, ok := a.parsedData().(map[string]any); ok {
			if s, ok := m[name].(string); ok {
				return s, true
			}
		}
		return "", true
	case "event":
		return a.eventAttrs(), true
	}
	return nil, false
}

// parsedData is the data as JSON, or nil when it is not JSON.
func (a *Activation) parsedData() any {
	if !a.parsed {
		a.parsed = true
		if v, err := transform.DecodeJSON(a.e.Data()); err == nil {
			a.data = v
		}
	}
	return a.data
}

// eventAttrs is the event's attributes as its structured form holds them.
func (a *Activation) eventAttrs() map[string]any {
	if a.attrs != nil {
		return a.attrs
	}
	e := a.e
	m := make(map[string]any, 8+len(e.Extensions()))
	for k, v := range e.Extensions() {
		m[k] = extensionValue(v)
	}
	m["specversion"], m["id"], m["source"], m["type"] = e.SpecVersion(), e.ID(), e.Source(), e.Type()
	for k, v := range map[string]string{"subject": e.Subject(), "datacontenttype": e.DataContentType(), "dataschema": e.DataSchema()} {
		if v != "" {
			m[k] = v
		}
	}
	if t := e.Time(); !t.IsZero() {
		m["time"] = t
	}
	a.attrs = m
	return m
}

// extensionValue gives the CloudEvents types CEL has no conversion for
// (URI, URI-reference, Timestamp) as string and timestamp.
func extensionValue(v any) any {
	switch v := v.(type) {
	case cetypes.URI:
		return v.String()
	case cetypes.URIRef:
		return v.String()
	case cetypes.Timestamp:
		return v.Time
	case *cetypes.URI, *cetypes.URIRef, *cetypes.Timestamp:
		s, _ := cetypes.Format(v)
		return s
	}
	return v
}
