package nats

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// subjectProgram compiles subject_expression. Variables: the event's id,
// source, type, subject, extensions, data (parsed JSON), and db and table
// (from a row change's default data, else "").
func subjectProgram(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.Variable("id", cel.StringType), cel.Variable("source", cel.StringType),
		cel.Variable("type", cel.StringType), cel.Variable("subject", cel.StringType),
		cel.Variable("extensions", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("data", cel.DynType), cel.Variable("db", cel.StringType), cel.Variable("table", cel.StringType),
	)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.StringType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("evaluates to %s, want a string", t)
	}
	return env.Program(ast, cel.EvalOptions(cel.OptOptimize))
}

// subjectOf evaluates the expression for one event and checks the result
// is a subject one can publish to.
func subjectOf(p cel.Program, e *event.Event) (string, error) {
	vars := map[string]any{"id": e.ID(), "source": e.Source(), "type": e.Type(), "subject": e.Subject(),
		"extensions": e.Extensions(), "data": nil, "db": "", "table": ""}
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
		return "", fmt.Errorf("subject_expression: %w", err)
	}
	s, ok := out.(types.String)
	if !ok {
		return "", fmt.Errorf("subject_expression gave %v, want a string", out)
	}
	if err := checkSubject(string(s)); err != nil {
		return "", fmt.Errorf("subject_expression gave a subject that %w", err)
	}
	return string(s), nil
}
