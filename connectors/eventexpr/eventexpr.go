// Package eventexpr compiles the CEL expressions sinks evaluate per event
// to name where it goes (a Kafka topic, a NATS subject). Variables: the
// event's id, source, type, subject, time, datacontenttype, extensions,
// data (parsed JSON, else null), and db and table (from a row change's
// default data, else "").
package eventexpr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// Compile compiles expr, which must evaluate to a string.
func Compile(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.Variable("id", cel.StringType), cel.Variable("source", cel.StringType),
		cel.Variable("type", cel.StringType), cel.Variable("subject", cel.StringType),
		cel.Variable("time", cel.TimestampType), cel.Variable("datacontenttype", cel.StringType),
		cel.Variable("extensions", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("data", cel.DynType), cel.Variable("db", cel.StringType), cel.Variable("table", cel.StringType),
	)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.StringType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("evaluates to %s, want a string", t)
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// ErrNotString is returned by String for a result that is not a non-empty
// string.
var ErrNotString = errors.New("want a non-empty string")

// String evaluates p for one event.
func String(p cel.Program, e *event.Event) (string, error) {
	vars := map[string]any{"id": e.ID(), "source": e.Source(), "type": e.Type(), "subject": e.Subject(),
		"time": e.Time(), "datacontenttype": e.DataContentType(), "extensions": e.Extensions(),
		"data": nil, "db": "", "table": ""}
	var data any
	if json.Unmarshal(e.Data(), &data) == nil {
		vars["data"] = data
		if m, ok := data.(map[string]any); ok {
			for _, k := range []string{"db", "table"} {
				if s, ok := m[k].(string); ok {
					vars[k] = s
				}
			}
		}
	}
	out, _, err := p.Eval(vars)
	if err != nil {
		return "", err
	}
	s, ok := out.(types.String)
	if !ok || s == "" {
		return "", fmt.Errorf("gave %v, %w", out, ErrNotString)
	}
	return string(s), nil
}
