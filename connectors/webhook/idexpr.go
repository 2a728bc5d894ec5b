package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// idProgram compiles id_expression: a CEL expression over the request
// (headers, query, method, path, body) yielding its delivery id, for
// senders that put the id in the body.
func idProgram(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("query", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("method", cel.StringType),
		cel.Variable("path", cel.StringType),
		cel.Variable("body", cel.DynType),
	)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("id_expression: %s", strings.Replace(iss.Err().Error(), "\n", " ", -1))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.StringType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("id_expression evaluates to %s, want string", t)
	}
	return env.Program(ast)
}

// deliveryID evaluates the expression; a missing field yields "" (no dedupe).
func deliveryID(p cel.Program, r *http.Request, b body) string {
	vars := map[string]any{"headers": flatHeaders(r.Header), "query": flatQuery(r), "method": r.Method, "path": r.URL.Path, "body": nil}
	if b.contentType == jsonType {
		var v any
		if json.Unmarshal(b.data, &v) == nil {
			vars["body"] = v
		}
	} else if len(b.events) == 1 {
		vars["body"] = b.events[0].ID()
	}
	out, _, err := p.Eval(vars)
	if err != nil {
		return ""
	}
	switch v := out.(type) {
	case types.String:
		return string(v)
	case types.Int, types.Uint, types.Double:
		return fmt.Sprint(v.Value())
	}
	return ""
}

// flatHeaders: lower-case names, repeated values joined with ", ".
func flatHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return out
}

func flatQuery(r *http.Request) map[string]string {
	q := r.URL.Query()
	out := make(map[string]string, len(q))
	for k, v := range q {
		out[k] = strings.Join(v, ",")
	}
	return out
}
