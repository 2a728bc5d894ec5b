// Package discard is the sink that acknowledges and drops every event,
// counting them. It measures the rest of the pipeline (benchmarks) and lets
// a configuration run without a destination.
//
//	sinks:
//	  sink-hole: {type: discard}
package discard

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: discard` sink block; it has no keys.
type Config struct{}

// DefaultConfig returns the (empty) configuration.
func DefaultConfig() *Config { return &Config{} }

// Connector registers the `type: discard` sink.
var Connector = ferry.SinkSpec[Config]{Name: "discard",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		return ferry.AsSink(New(name, cfg, env.Log))
	}}

// Validate reports nothing: there is nothing to get wrong.
func (c *Config) Validate() error { return nil }

// Sink drops events, counting them. It is safe for concurrent use.
type Sink struct {
	name   string
	count  atomic.Uint64
	closed atomic.Bool
}

var _ ferry.Sink = (*Sink)(nil)

// New returns a discarding sink. cfg and log may be nil.
func New(name string, _ *Config, _ *slog.Logger) (*Sink, error) { return &Sink{name: name}, nil }

// Open does nothing.
func (s *Sink) Open(context.Context) error { return nil }

// Write acknowledges every event. With ctx already done it acknowledges
// none and returns ctx.Err(), wrapped.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("discard sink %s: write: %w", s.name, ferry.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discard sink %s: write: %w", s.name, err)
	}
	s.count.Add(uint64(len(events)))
	return nil
}

// Close stops accepting writes; calling it again does nothing.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	return nil
}

// Count returns how many events were acknowledged.
func (s *Sink) Count() uint64 { return s.count.Load() }
