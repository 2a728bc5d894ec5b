// Package stdout is the sink that writes one structured-mode JSON CloudEvent
// per line, for terminals, pipes and log collectors.
package stdout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: stdout` sink block; it has no keys.
type Config struct{}

// DefaultConfig returns the (empty) configuration.
func DefaultConfig() *Config { return &Config{} }

// Sink writes events as JSON lines.
type Sink struct {
	name   string
	mu     sync.Mutex
	w      *bufio.Writer
	closed bool
	log    *slog.Logger
}

var _ ferry.Sink = (*Sink)(nil)

// New returns a sink writing to os.Stdout.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	return NewWithWriter(name, cfg, os.Stdout, log)
}

// NewWithWriter returns a sink writing to w.
func NewWithWriter(name string, _ *Config, w io.Writer, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{name: name, w: bufio.NewWriterSize(w, 64<<10), log: log}, nil
}

// Open does nothing: stdout is always there.
func (s *Sink) Open(context.Context) error { return nil }

// Write writes each event as one line and flushes before returning, so a
// nil error means the bytes reached the writer.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("stdout sink %s: %w", s.name, ferry.ErrClosed)
	}
	for _, e := range events {
		if err := ctx.Err(); err != nil {
			return err // nothing written yet for this event; the pipeline retries it
		}
		b, err := json.Marshal(e)
		if err != nil {
			return ferry.Permanent(fmt.Errorf("encode event %s: %w", e.ID(), err))
		}
		_, _ = s.w.Write(b)
		if err := s.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("stdout sink %s: %w", s.name, err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("stdout sink %s: %w", s.name, err)
	}
	return nil
}

// Close flushes and stops accepting writes.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.w.Flush()
}
