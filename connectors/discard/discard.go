// Package discard is a sink that acknowledges and drops every event. It
// measures the rest of the pipeline (benchmarks) and lets a configuration
// run without a destination.
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

// Sink drops events, counting them.
type Sink struct {
	name   string
	count  atomic.Uint64
	closed atomic.Bool
}

var _ ferry.Sink = (*Sink)(nil)

// New returns a discarding sink.
func New(name string, _ *Config, _ *slog.Logger) (*Sink, error) { return &Sink{name: name}, nil }

// Open does nothing.
func (s *Sink) Open(context.Context) error { return nil }

// Write counts and drops the events.
func (s *Sink) Write(_ context.Context, events []*event.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("discard sink %s: %w", s.name, ferry.ErrClosed)
	}
	s.count.Add(uint64(len(events)))
	return nil
}

// Close stops accepting writes.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	return nil
}

// Count returns how many events were accepted.
func (s *Sink) Count() uint64 { return s.count.Load() }
