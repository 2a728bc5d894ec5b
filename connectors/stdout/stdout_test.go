package stdout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

func (l *lockedBuffer) lines(t *testing.T) []event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []event.Event
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q is not a CloudEvent: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestAcceptance(t *testing.T) {
	var buf lockedBuffer
	conntest.RunSink(t, conntest.SinkHarness{
		New: func(*testing.T) ferry.Sink {
			s, _ := NewWithWriter("out", DefaultConfig(), &buf, nil)
			return s
		},
		Received: func(t *testing.T) []event.Event { return buf.lines(t) },
	})
}

func TestOneLinePerEvent(t *testing.T) {
	var buf bytes.Buffer
	s, _ := NewWithWriter("out", DefaultConfig(), &buf, nil)
	if err := s.Write(context.Background(), conntest.Events(3, 1)); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 3 {
		t.Fatalf("%d lines for 3 events:\n%s", n, buf.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterErrorIsTransient(t *testing.T) {
	s, _ := NewWithWriter("out", DefaultConfig(), failingWriter{}, nil)
	err := s.Write(context.Background(), conntest.Events(1, 1))
	if err == nil || ferry.IsPermanent(err) {
		t.Fatalf("Write = %v, want a transient error", err)
	}
}
