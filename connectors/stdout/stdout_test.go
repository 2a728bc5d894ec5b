package stdout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// lockedBuffer lets the suite read what a sink wrote.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// parseLines decodes every line as a structured CloudEvent.
func parseLines(t *testing.T, out string) []event.Event {
	t.Helper()
	var events []event.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not a CloudEvent: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

func newSink(t *testing.T, w interface{ Write([]byte) (int, error) }) *Sink {
	t.Helper()
	s, err := NewWithWriter("console", DefaultConfig(), w, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptance(t *testing.T) {
	var buf lockedBuffer
	conntest.RunSink(t, conntest.SinkHarness{
		New:      func(t *testing.T) ferry.Sink { return newSink(t, &buf) },
		Received: func(t *testing.T) []event.Event { return parseLines(t, buf.String()) },
	})
}

func TestOneLinePerEvent(t *testing.T) {
	multiline := event.New()
	multiline.SetID("pretty")
	multiline.SetSource("/s")
	multiline.SetType("t")
	multiline.SetDataContentType(event.ApplicationJSON)
	multiline.DataEncoded = []byte("{\n  \"a\": \"<b>&\",\n  \"b\": [1,\r\n 2]\n}")
	cases := []struct {
		name   string
		events []*event.Event
	}{
		{"plain events", conntest.Events(3, 2)},
		{"data with line breaks", []*event.Event{&multiline}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := newSink(t, &buf).Write(context.Background(), c.events); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if n := strings.Count(out, "\n"); n != len(c.events) || strings.Contains(out, "\r") {
				t.Fatalf("%d events gave %d lines:\n%s", len(c.events), n, out)
			}
			got := parseLines(t, out)
			for i := range got {
				var a, b any
				_ = json.Unmarshal(got[i].Data(), &a)
				_ = json.Unmarshal(c.events[i].Data(), &b)
				if got[i].ID() != c.events[i].ID() || !jsonEqual(a, b) {
					t.Fatalf("line %d: got %s %s, want %s %s", i, got[i].ID(), got[i].Data(), c.events[i].ID(), c.events[i].Data())
				}
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// brokenWriter accepts `room` bytes, then fails until healed.
type brokenWriter struct {
	buf  bytes.Buffer
	room int
}

func (w *brokenWriter) Write(p []byte) (int, error) {
	if w.room < 0 {
		return w.buf.Write(p)
	}
	n := min(len(p), w.room)
	w.buf.Write(p[:n])
	w.room -= n
	if n < len(p) {
		return n, errors.New("broken pipe")
	}
	return n, nil
}

func TestWriterFailure(t *testing.T) {
	events := conntest.Events(3, 1)
	var one bytes.Buffer
	_ = newSink(t, &one).Write(context.Background(), events[:1])
	line := one.Len()
	cases := []struct {
		name       string
		room       int
		wantFailed []int // nil: a batch-wide error
	}{
		{"nothing written", 0, nil},
		{"inside the first line", line / 2, nil},
		{"after the first line", line, []int{1, 2}},
		{"inside the second line", line + 10, []int{1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &brokenWriter{room: c.room}
			s := newSink(t, w)
			err := s.Write(context.Background(), events)
			if err == nil || ferry.IsPermanent(err) {
				t.Fatalf("Write = %v, want a transient error", err)
			}
			var be *ferry.BatchError
			if errors.As(err, &be) != (c.wantFailed != nil) || (be != nil && !slices.Equal(be.Indexes(), c.wantFailed)) {
				t.Fatalf("Write = %v, want failed %v", err, c.wantFailed)
			}
			for _, i := range c.wantFailed {
				if ferry.IsPermanent(be.Failed(i)) {
					t.Fatalf("event %d: %v is permanent", i, be.Failed(i))
				}
			}
			w.room = -1 // healed: the retry must land on lines of its own
			failed := events
			if be != nil {
				failed = events[1:]
			}
			if err := s.Write(context.Background(), failed); err != nil {
				t.Fatalf("retry = %v", err)
			}
			got := parseableIDs(w.buf.String())
			if !slices.Equal(got, []string{"conntest-0", "conntest-1", "conntest-2"}) {
				t.Fatalf("complete lines after the retry: %v\n%s", got, w.buf.String())
			}
		})
	}
}

// parseableIDs returns the ids of the lines that are CloudEvents, skipping
// fragments a failed write left.
func parseableIDs(out string) []string {
	var ids []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var e event.Event
		if json.Unmarshal([]byte(l), &e) == nil {
			ids = append(ids, e.ID())
		}
	}
	return ids
}

func TestUnencodableEventIsPermanentAndHoldsBackTheRest(t *testing.T) {
	events := conntest.Events(4, 2)
	bad := events[1].Clone()
	bad.DataEncoded = []byte(`{"not json`) // what SetData would refuse
	events[1] = &bad
	var buf bytes.Buffer
	err := newSink(t, &buf).Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Indexes(), []int{1, 2, 3}) {
		t.Fatalf("Write = %v, want events 1-3 failed", err)
	}
	if !ferry.IsPermanent(be.Failed(1)) || ferry.IsPermanent(be.Failed(2)) {
		t.Fatalf("want event 1 permanent and 2 transient: %v / %v", be.Failed(1), be.Failed(2))
	}
	if got := parseableIDs(buf.String()); !slices.Equal(got, []string{"conntest-0"}) {
		t.Fatalf("written: %v", got)
	}
}

func TestLifecycleErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name  string
		close bool
		ctx   context.Context
		want  error
	}{
		{"after close", true, context.Background(), ferry.ErrClosed},
		{"cancelled context", false, cancelled, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := newSink(t, &buf)
			if c.close {
				_ = s.Close(context.Background())
			}
			if err := s.Write(c.ctx, conntest.Events(2, 1)); !errors.Is(err, c.want) {
				t.Fatalf("Write = %v, want %v", err, c.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %q", buf.String())
			}
		})
	}
}
