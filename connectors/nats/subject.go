package nats

import (
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"

	"github.com/ferry-cdc/ferry/connectors/eventexpr"
)

// subjectProgram compiles subject_expression (variables: see eventexpr).
func subjectProgram(expr string) (cel.Program, error) { return eventexpr.Compile(expr) }

// subjectOf evaluates the expression for one event and checks the result
// is a subject one can publish to.
func subjectOf(p cel.Program, e *event.Event) (string, error) {
	s, err := eventexpr.String(p, e)
	if err != nil {
		return "", fmt.Errorf("subject_expression: %w", err)
	}
	if err := checkSubject(s); err != nil {
		return "", fmt.Errorf("subject_expression: %w", err)
	}
	return s, nil
}
