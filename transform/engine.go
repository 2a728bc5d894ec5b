// Package transform turns changes into CloudEvents and decides which sinks
// each event goes to. Every rule whose `from` and `when` match a change
// yields an event for its own sinks (several rules: several events); a
// change no rule matches goes out with the default mapping to the default
// sinks, or is dropped when there are none.
package transform

import (
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// Output is one event and the sinks it is routed to, or the failure of one
// rule on one change (Err set, Event nil): the pipeline dead-letters those.
type Output struct {
	Event *event.Event
	// To names the sinks; the slice is shared between outputs and must not
	// be modified.
	To []string
	// Rule names the rule that produced the output, "" for the default mapping.
	Rule string
	Err  error
}

// Options configure an Engine.
type Options struct {
	// TypePrefix starts the type of every default CloudEvent.
	TypePrefix string
	// DefaultTo lists the sinks of changes no rule matches; empty drops them.
	DefaultTo []string
	// Rules are evaluated in order for every change.
	Rules []Rule
}

// Engine holds the compiled rules of one configuration. It is immutable
// and safe for concurrent use; per-goroutine state lives in a Worker.
type Engine struct {
	mapping   *DefaultMapping
	defaultTo []string
	rules     []*rule
}

// New compiles the options; a CompileErrors lists every problem.
func New(opts Options) (*Engine, error) {
	rules, err := compileRules(opts.Rules)
	if err != nil {
		return nil, err
	}
	return &Engine{
		mapping:   NewDefaultMapping(opts.TypePrefix),
		defaultTo: append([]string(nil), opts.DefaultTo...),
		rules:     rules,
	}, nil
}

// Worker applies an Engine from one goroutine, reusing its buffers.
type Worker struct {
	e       *Engine
	act     activation
	base    eventBase // reused while building each rule event
	scratch []byte
	arena   eventArena
}

// NewWorker returns a Worker; it is not safe for concurrent use.
func (e *Engine) NewWorker() *Worker {
	return &Worker{e: e, act: activation{names: e.mapping}, scratch: make([]byte, 0, 4096)}
}

// Apply appends the outputs of c to out and returns the extended slice. No
// output means the change is dropped: a drop rule matched, or nothing
// matched and there are no default sinks.
func (w *Worker) Apply(c *ferry.Change, out []Output) []Output {
	if len(w.e.rules) > 0 { // the activation is only read by rules
		w.act.bind(c)
	}
	matched := false
	for _, r := range w.e.rules {
		if r.from != nil && !r.from[c.Source] {
			continue
		}
		if r.outbox != nil {
			if !r.outbox.owns(c) {
				continue
			}
			if !r.outbox.emits(c) {
				matched = true // outbox clean-up: neither an event nor a default one
				continue
			}
		}
		ok, err := w.evalBool(r.when)
		if err != nil {
			out = append(out, Output{Rule: r.name, Err: fmt.Errorf("rule %s: when: %w", r.name, err)})
			matched = true
			continue
		}
		if !ok {
			continue
		}
		matched = true
		if r.drop {
			continue
		}
		ev, err := w.ruleEvent(r, c)
		if err != nil {
			out = append(out, Output{Rule: r.name, Err: fmt.Errorf("rule %s: %w", r.name, err)})
			continue
		}
		out = append(out, Output{Event: ev, To: r.to, Rule: r.name})
	}
	if matched || len(w.e.defaultTo) == 0 {
		return out
	}
	var ev *event.Event
	ev, w.scratch = w.e.mapping.event(c, w.scratch, &w.arena)
	return append(out, Output{Event: ev, To: w.e.defaultTo})
}
