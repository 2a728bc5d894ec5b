// Package transform turns changes into CloudEvents and decides which sinks
// each event goes to. A change either matches rules (each yielding an event
// for its own sinks) or, when none matches, goes out with the default mapping
// to the configured default sinks, or is dropped.
package transform

import (
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// Output is one event and the sinks it is routed to.
type Output struct {
	Event *event.Event
	// To names the sinks; the slice is shared between outputs and must not
	// be modified.
	To []string
	// Rule names the rule that produced the event, "" for the default mapping.
	Rule string
}

// Options configure an Engine.
type Options struct {
	// TypePrefix starts the type of every default CloudEvent.
	TypePrefix string
	// DefaultTo lists the sinks of changes no rule matches; empty drops them.
	DefaultTo []string
}

// Engine holds the compiled routing of one configuration. It is immutable
// and safe for concurrent use; per-goroutine state lives in a Worker.
type Engine struct {
	mapping   *DefaultMapping
	defaultTo []string
}

// New compiles the options into an Engine.
func New(opts Options) (*Engine, error) {
	return &Engine{
		mapping:   NewDefaultMapping(opts.TypePrefix),
		defaultTo: append([]string(nil), opts.DefaultTo...),
	}, nil
}

// Worker applies an Engine from one goroutine, reusing its buffers.
type Worker struct {
	e       *Engine
	scratch []byte
}

// NewWorker returns a Worker; it is not safe for concurrent use.
func (e *Engine) NewWorker() *Worker { return &Worker{e: e, scratch: make([]byte, 0, 4096)} }

// Apply appends the outputs of c to out and returns the extended slice. No
// output means the change is dropped: no rule matched and there are no
// default sinks.
func (w *Worker) Apply(c *ferry.Change, out []Output) ([]Output, error) {
	if len(w.e.defaultTo) == 0 {
		return out, nil
	}
	var ev *event.Event
	ev, w.scratch = w.e.mapping.Event(c, w.scratch)
	return append(out, Output{Event: ev, To: w.e.defaultTo}), nil
}
