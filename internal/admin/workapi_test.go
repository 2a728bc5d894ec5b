package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// recordingWork serves dead letters and schemas, recording the arguments
// each call got; Show refuses an "at" that is not FILE:POS-shaped and an
// unknown source as the running Ferry does.
type recordingWork struct {
	mu    sync.Mutex
	calls []string
}

func (f *recordingWork) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *recordingWork) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func (f *recordingWork) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return ""
	}
	return f.calls[len(f.calls)-1]
}

func (f *recordingWork) List(_ context.Context, sink string) ([]state.DeadLetter, error) {
	f.record("list %q", sink)
	if sink == "recv" {
		return []state.DeadLetter{{Seq: 7, Sink: "recv", EventID: "e7"}}, nil
	}
	return nil, nil
}

func (f *recordingWork) Replay(_ context.Context, sink string) (DeadLetterReplay, error) {
	f.record("replay %q", sink)
	return DeadLetterReplay{Replayed: 1}, nil
}

func (f *recordingWork) Show(_ context.Context, source, table, at string) ([]mysql.SchemaVersionView, error) {
	f.record("show %q %q %q", source, table, at)
	switch {
	case source != "db":
		return nil, fmt.Errorf("%w: no mysql source named %q", ErrNotFound, source)
	case at != "" && !strings.Contains(at, ":"):
		return nil, ferry.Invalid("at", "%q: want FILE:POS", at)
	}
	return nil, nil
}

func (f *recordingWork) Resync(_ context.Context, source, table string) (mysql.Resync, error) {
	f.record("resync %q %q", source, table)
	return mysql.Resync{At: "mysql-bin.000001:4"}, nil
}

func serveWork(t *testing.T) (http.Handler, *recordingWork) {
	t.Helper()
	f := &recordingWork{}
	srv, err := Listen(Options{Addr: "127.0.0.1:0", Metrics: telemetry.New("test"), DeadLetters: f, Schemas: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.ln.Close() })
	return srv.srv.Handler, f
}

// TestWorkAPIAnswers: /deadletters and /schemas answer their requests in
// one shape: lists as JSON arrays ([] when empty), the parameters passed
// through as given.
func TestWorkAPIAnswers(t *testing.T) {
	h, f := serveWork(t)
	for _, c := range []struct {
		method, path, body string
		wantBody, wantCall string
	}{
		{"GET", "/deadletters", "", "[]", `list ""`},
		{"GET", "/deadletters?sink=recv", "", `"event_id": "e7"`, `list "recv"`},
		{"POST", "/deadletters/replay", `{}`, `"replayed": 1`, `replay ""`},
		{"POST", "/deadletters/replay", `{"sink":"recv"}`, `"replayed": 1`, `replay "recv"`},
		{"GET", "/schemas?source=db", "", "[]", `show "db" "" ""`},
		{"GET", "/schemas?source=db&table=shop.t&at=mysql-bin.000001%3A4", "", "[]", `show "db" "shop.t" "mysql-bin.000001:4"`},
		{"POST", "/schemas/resync", `{"source":"db","table":"shop.t"}`, `"at": "mysql-bin.000001:4"`, `resync "db" "shop.t"`},
	} {
		w := do(h, c.method, c.path, c.body)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), c.wantBody) {
			t.Errorf("%s %s = %d %s, want 200 with %s", c.method, c.path, w.Code, w.Body, c.wantBody)
		}
		if got := f.last(); got != c.wantCall {
			t.Errorf("%s %s called %s, want %s", c.method, c.path, got, c.wantCall)
		}
	}
}

// TestWorkAPIErrors: a caller's mistake is a JSON error naming the field
// at fault and why, with the status that says whose mistake it is, and
// the work is not done.
func TestWorkAPIErrors(t *testing.T) {
	h, f := serveWork(t)
	for _, c := range []struct {
		method, path, body string
		status             int
		field, reason      string
		worked             bool // the work itself refused it, after the handler's checks
	}{
		{"GET", "/deadletters?sinks=recv", "", 400, "sinks", "unknown query parameter (known: sink)", false},
		{"GET", "/deadletters?sink=a&sink=b", "", 400, "sink", "given 2 times, want once", false},
		{"GET", "/deadletters?sink=%zz", "", 400, "query", "unreadable", false},
		{"POST", "/deadletters/replay", `{"sinks":"recv"}`, 400, "", `unknown field "sinks"`, false},
		{"GET", "/schemas", "", 400, "source", "source: required", false},
		{"GET", "/schemas?source=db&tabel=t", "", 400, "tabel", "unknown query parameter (known: source, table, at)", false},
		{"GET", "/schemas?source=db&at=42", "", 400, "at", `at: "42": want FILE:POS`, true},
		{"GET", "/schemas?source=other", "", 404, "", `no mysql source named "other"`, true},
		{"POST", "/schemas/resync", `{"source":"db"}`, 400, "table", "table: required", false},
		{"POST", "/schemas/resync", `{"table":"shop.t"}`, 400, "source", "source: required", false},
		{"POST", "/schemas/resync", `not json`, 400, "", "invalid request body", false},
	} {
		before := f.count()
		w := do(h, c.method, c.path, c.body)
		e := decodeError(t, w)
		if w.Code != c.status || e.Field != c.field || !strings.Contains(e.Error, c.reason) {
			t.Errorf("%s %s = %d %+v, want %d naming field %q with %q", c.method, c.path, w.Code, e, c.status, c.field, c.reason)
		}
		if called := f.count() != before; called != c.worked {
			t.Errorf("%s %s: the work was called: %v, want %v", c.method, c.path, called, c.worked)
		}
	}
}

// TestWorkAPIWrongMethod: a method a path does not answer is a 405 in the
// API's JSON error shape, with Allow naming the ones it does.
func TestWorkAPIWrongMethod(t *testing.T) {
	h, f := serveWork(t)
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/deadletters", "GET, HEAD"},
		{"POST", "/deadletters", "GET, HEAD"},
		{"GET", "/deadletters/replay", "POST"},
		{"PUT", "/schemas", "GET, HEAD"},
		{"GET", "/schemas/resync", "POST"},
	} {
		w := do(h, c.method, c.path, `{}`)
		e := decodeError(t, w)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != c.allow ||
			!strings.Contains(e.Error, "method "+c.method+" not allowed on "+c.path) {
			t.Errorf("%s %s = %d Allow %q %+v, want 405 Allow %q", c.method, c.path, w.Code, w.Header().Get("Allow"), e, c.allow)
		}
	}
	if got := f.last(); got != "" {
		t.Errorf("a wrong method reached the work: %s", got)
	}
}

// TestClientQueries: the client sends what the handlers read, leaving out
// empty parameters.
func TestClientQueries(t *testing.T) {
	h, f := serveWork(t)
	ts := httptest.NewServer(h)
	defer ts.Close()
	c := NewClient(ClientOptions{Addr: strings.TrimPrefix(ts.URL, "http://")})
	ctx := context.Background()
	if letters, err := c.DeadLetters(ctx, ""); err != nil || len(letters) != 0 || f.last() != `list ""` {
		t.Errorf("DeadLetters(\"\") = %v, %v; called %s", letters, err, f.last())
	}
	if letters, err := c.DeadLetters(ctx, "recv"); err != nil || len(letters) != 1 || f.last() != `list "recv"` {
		t.Errorf("DeadLetters(recv) = %v, %v; called %s", letters, err, f.last())
	}
	if _, err := c.SchemaHistory(ctx, "db", "", "mysql-bin.000001:4"); err != nil || f.last() != `show "db" "" "mysql-bin.000001:4"` {
		t.Errorf("SchemaHistory = %v; called %s", err, f.last())
	}
	_, err := c.SchemaHistory(ctx, "", "", "")
	if e, ok := err.(*APIError); !ok || e.Status != http.StatusBadRequest || e.Msg != "source: required" {
		t.Errorf("SchemaHistory without a source = %v, want a 400 source: required", err)
	}
}

func do(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decodeError(t *testing.T, w *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var e errorBody
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer %d has Content-Type %q, want application/json: %s", w.Code, ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Errorf("error answer %d is not {\"error\": ...}: %s", w.Code, w.Body)
	}
	return e
}
