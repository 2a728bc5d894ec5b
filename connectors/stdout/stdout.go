// Package stdout is the sink that writes every event as one line of JSON, in
// the CloudEvents structured format, for terminals, pipes and log
// collectors.
//
//	sinks:
//	  console: {type: stdout}
//
// Each Write encodes its whole batch and hands it to the writer in one call
// before returning, so an acknowledged event has reached the writer (for
// os.Stdout: the kernel). JSON is compacted, so data with line breaks stays
// on its line. When the writer fails part-way, the events whose lines were
// written completely are acknowledged and the next Write starts on a fresh
// line.
package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// Connector registers the `type: stdout` sink.
var Connector = ferry.SinkSpec[Config]{Name: "stdout",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		return ferry.AsSink(New(name, cfg, env.Log))
	}}

// Validate reports nothing: there is nothing to get wrong.
func (c *Config) Validate() error { return nil }

// keepBuffer is the largest encoding buffer kept between writes.
const keepBuffer = 4 << 20

// Sink writes events as JSON lines. It is safe for concurrent use.
type Sink struct {
	name string
	log  *slog.Logger

	mu     sync.Mutex // serialises Write and Close; guards the fields below
	w      io.Writer
	buf    bytes.Buffer
	enc    *json.Encoder // encodes into buf
	ends   []int         // ends[i]: offset in buf just past event i's line
	torn   bool          // the last write stopped inside a line
	closed bool
}

var _ ferry.Sink = (*Sink)(nil)

// New returns a sink writing to os.Stdout. cfg and log may be nil; log is
// expected to name the sink already (the application's carries sink=NAME).
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	return NewWithWriter(name, cfg, os.Stdout, log)
}

// NewWithWriter returns a sink writing to w. The sink never closes w.
func NewWithWriter(name string, _ *Config, w io.Writer, log *slog.Logger) (*Sink, error) {
	if w == nil {
		return nil, fmt.Errorf("stdout sink %s: nil writer", name)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{name: name, w: w, log: log} // the caller's log names the sink
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false) // keep data bytes as they are
	return s, nil
}

// Open does nothing: the writer is always there.
func (s *Sink) Open(context.Context) error { return nil }

// Write writes one line per event and returns once they reached the
// writer. An event that cannot be encoded fails permanently and the events
// after it are not written (so no event overtakes an earlier one); a writer
// error is transient. With ctx already done it writes nothing and returns
// ctx.Err(), wrapped.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("stdout sink %s: write: %w", s.name, ferry.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stdout sink %s: write: %w", s.name, err)
	}
	encoded, encErr := s.encode(events)
	written, werr := s.flush()
	return s.result(events, encoded, written, encErr, werr)
}

// encode fills buf with the lines of events, stopping at the first event
// that cannot be encoded; it returns how many were encoded and why it
// stopped.
func (s *Sink) encode(events []*event.Event) (int, error) {
	s.buf.Reset()
	s.ends = s.ends[:0]
	if s.torn {
		s.buf.WriteByte('\n') // end the fragment a failed write left
	}
	for i, e := range events {
		if err := s.enc.Encode(e); err != nil {
			return i, ferry.Permanent(fmt.Errorf("encode event %s as JSON: %w", e.ID(), err))
		}
		s.ends = append(s.ends, s.buf.Len())
	}
	return len(events), nil
}

// flush writes buf in one call and returns how many of its events were
// written completely.
func (s *Sink) flush() (int, error) {
	defer func() {
		if s.buf.Cap() > keepBuffer {
			s.buf = bytes.Buffer{} // s.enc writes through &s.buf, which stays valid
		}
	}()
	if s.buf.Len() == 0 {
		return 0, nil
	}
	b := s.buf.Bytes()
	n, err := s.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		s.torn = false
		return len(s.ends), nil
	}
	if n > 0 && b[n-1] != '\n' {
		s.torn = true
		s.log.Warn("write stopped inside a line; the event is written again on a new line", "error", err)
	} else if n > 0 {
		s.torn = false
	}
	done := 0
	for done < len(s.ends) && s.ends[done] <= n {
		done++
	}
	return done, err
}

// result turns what was encoded and written into Write's answer.
func (s *Sink) result(events []*event.Event, encoded, written int, encErr, werr error) error {
	if written == len(events) {
		return nil
	}
	if written == 0 && encErr == nil {
		return fmt.Errorf("stdout sink %s: write: %w", s.name, werr)
	}
	be := ferry.NewBatchError()
	for i := written; i < len(events); i++ {
		switch {
		case i < encoded:
			be.Fail(i, fmt.Errorf("write: %w", werr))
		case i == encoded:
			be.Fail(i, encErr)
		default:
			be.Fail(i, errors.New("not written: an earlier event of the batch could not be encoded"))
		}
	}
	return be
}

// Close stops accepting writes; calling it again does nothing. It does not
// close the writer.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
