package httpsink

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// TestNoRequestAfterTheWriteContextEnded: a lane sends its requests one
// after another; once the Write's context says it is over, by Err alone
// (a frozen HA leader resumes past its deadline before its timer runs),
// no further request leaves, and the events not sent fail.
func TestNoRequestAfterTheWriteContextEnded(t *testing.T) {
	ctx := conntest.NewClockCtx()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		mu.Lock()
		got = append(got, r.Header.Get("Ce-Id"))
		mu.Unlock()
		ctx.Expire() // the deadline passes while this request is answered
	}))
	defer srv.Close()
	s, _ := newSink(t, srv.URL, func(c *Config) { c.Concurrency, c.Mode = 1, ModeBinary })
	events := conntest.Events(3, 3)
	err := s.Write(ctx, events)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != events[0].ID() {
		t.Fatalf("requests after the context ended: the endpoint got %v, want only %s", got, events[0].ID())
	}
	if err == nil {
		t.Fatal("Write = nil, want the unsent events failed")
	}
	for i := 1; i < len(events); i++ {
		if eventErr(t, err, i) == nil {
			t.Fatalf("event %d not sent but not failed", i)
		}
	}
}

// TestNoBodySentAfterTheWriteContextEnded: the context ends between the
// sink's last check and the transport writing the request (a process
// frozen right there resumes past its deadline): the body is not written,
// so the endpoint takes nothing, in every mode, and the event fails.
func TestNoBodySentAfterTheWriteContextEnded(t *testing.T) {
	for _, mode := range []string{ModeBinary, ModeStructured, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			var accepted, requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if _, err := io.ReadAll(r.Body); err == nil {
					accepted.Add(1)
				}
			}))
			defer srv.Close()
			s, _ := newSink(t, srv.URL, func(c *Config) { c.Concurrency, c.Mode = 1, mode })
			ctx := conntest.NewClockCtx()
			// The transport has the request in hand and a connection to
			// write it to: the deadline passes now.
			trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { ctx.Expire() }}
			err := s.Write(httptrace.WithClientTrace(ctx, trace), conntest.Events(1, 1))
			if n := accepted.Load(); n != 0 {
				t.Fatalf("the endpoint read %d whole requests sent after the context ended", n)
			}
			if err == nil {
				t.Fatal("Write = nil, want the event failed")
			}
			t.Logf("%d requests began (headers only); Write = %v", requests.Load(), err)
		})
	}
}
