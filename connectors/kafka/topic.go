package kafka

import (
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"

	"github.com/ferry-cdc/ferry/connectors/eventexpr"
)

// topicProgram compiles topic_expression (variables: see eventexpr).
func topicProgram(expr string) (cel.Program, error) { return eventexpr.Compile(expr) }

// topicOf evaluates the expression for one event.
func topicOf(p cel.Program, e *event.Event) (string, error) {
	topic, err := eventexpr.String(p, e)
	if err != nil {
		return "", fmt.Errorf("topic_expression: %w", err)
	}
	return topic, nil
}
