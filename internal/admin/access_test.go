package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// countingControl counts the work it is asked for.
type countingControl struct{ calls atomic.Int64 }

func (c *countingControl) Backfill(context.Context, string, ferry.BackfillRequest) error {
	c.calls.Add(1)
	return nil
}
func (c *countingControl) Backfills() []ferry.BackfillProgress { c.calls.Add(1); return nil }
func (c *countingControl) PauseBackfill(context.Context, string, string) error {
	c.calls.Add(1)
	return nil
}
func (c *countingControl) StartReplay(context.Context, ReplayRequest) (ReplayStatus, error) {
	c.calls.Add(1)
	return ReplayStatus{ID: "r1"}, nil
}
func (c *countingControl) Replays() []ReplayStatus   { c.calls.Add(1); return nil }
func (c *countingControl) CancelReplay(string) error { c.calls.Add(1); return nil }

// accessCase is one request and the status access lets it reach.
type accessCase struct {
	method, path, remote, auth string
	want                       int
}

func serveAccess(t *testing.T, opts Options, cases []accessCase) {
	t.Helper()
	ctl := &countingControl{}
	opts.Addr, opts.Metrics, opts.Control = "127.0.0.1:0", telemetry.New("test"), ctl
	srv, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.ln.Close()
	for _, c := range cases {
		body := map[string]string{"/backfills": `{"source":"db","table":"shop.orders"}`,
			"/replays": `{"source":"db","from":"mysql-bin.000001:4"}`}[c.path]
		r := httptest.NewRequest(c.method, c.path, strings.NewReader(body))
		r.RemoteAddr = c.remote
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		before := ctl.calls.Load()
		w := httptest.NewRecorder()
		srv.srv.Handler.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s %s from %s (auth %q) = %d, want %d", c.method, c.path, c.remote, c.auth, w.Code, c.want)
		}
		if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
			if got := w.Body.String(); got != "unauthorized\n" && got != "forbidden\n" {
				t.Errorf("%s %s: refusal body %q tells more than the status", c.method, c.path, got)
			}
			if ctl.calls.Load() != before {
				t.Errorf("%s %s: refused, yet the work was done", c.method, c.path)
			}
		}
	}
}

const (
	local  = "127.0.0.1:40000"
	local6 = "[::1]:40000"
	remote = "10.1.2.3:40000"
)

// TestAccessWithoutToken: work answers on loopback only; probes, status
// and metrics answer anyone; an endpoint nobody listed (dead letters,
// added later) is work.
func TestAccessWithoutToken(t *testing.T) {
	serveAccess(t, Options{}, []accessCase{
		{"GET", "/healthz", remote, "", 200},
		{"GET", "/status", remote, "", 200},
		{"GET", "/metrics", remote, "", 200},
		{"GET", "/backfills", remote, "", 403},
		{"POST", "/backfills", remote, "", 403},
		{"POST", "/backfills/pause", remote, "", 403},
		{"POST", "/replays", remote, "", 403},
		{"GET", "/replays", remote, "", 403},
		{"DELETE", "/replays/r1", remote, "", 403},
		{"GET", "/deadletters", remote, "", 403},
		{"GET", "/healthz/", remote, "", 403},
		{"GET", "/backfills", local, "", 200},
		{"POST", "/backfills", local, "", 202},
		{"POST", "/replays", local6, "", 202},
	})
}

// TestAccessWithToken: every endpoint but the probes needs the token,
// from anywhere, loopback included.
func TestAccessWithToken(t *testing.T) {
	const token = "s3cret-Admin-token"
	serveAccess(t, Options{Token: token}, []accessCase{
		{"GET", "/healthz", remote, "", 200},
		{"GET", "/status", remote, "", 401},
		{"GET", "/metrics", remote, "", 401},
		{"POST", "/backfills", remote, "", 401},
		{"POST", "/backfills", local, "", 401},
		{"POST", "/backfills", remote, "Bearer wrong", 401},
		{"POST", "/backfills", remote, "Bearer " + token + "x", 401},
		{"POST", "/backfills", remote, "Basic " + token, 401},
		{"POST", "/backfills", remote, token, 401},
		{"GET", "/deadletters", remote, "", 401},
		{"POST", "/backfills", remote, "Bearer " + token, 202},
		{"POST", "/backfills", remote, "bearer " + token, 202},
		{"GET", "/status", remote, "Bearer " + token, 200},
		{"GET", "/metrics", remote, "Bearer " + token, 200},
		{"POST", "/replays", local, "Bearer " + token, 202},
	})
}

func TestAccessMetricsPublic(t *testing.T) {
	serveAccess(t, Options{Token: "t0ken", MetricsPublic: true}, []accessCase{
		{"GET", "/metrics", remote, "", 200},
		{"GET", "/status", remote, "", 401},
		{"GET", "/backfills", remote, "", 401},
	})
}

// TestClientSendsToken: the client of the CLI authenticates through a
// real listener.
func TestClientSendsToken(t *testing.T) {
	ctl := &countingControl{}
	srv, err := Listen(Options{Addr: "127.0.0.1:0", Metrics: telemetry.New("test"), Control: ctl, Token: "t0ken"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx) }()
	if _, err := NewClient(ClientOptions{Addr: srv.Addr()}).Backfills(ctx); err == nil || !strings.Contains(err.Error(), "FERRY_ADMIN_TOKEN") {
		t.Fatalf("without the token: %v, want a 401 naming FERRY_ADMIN_TOKEN", err)
	}
	if _, err := NewClient(ClientOptions{Addr: srv.Addr(), Token: "t0ken"}).Backfills(ctx); err != nil {
		t.Fatal(err)
	}
	if body, err := NewClient(ClientOptions{Addr: srv.Addr()}).Get(ctx, "/healthz"); err != nil || body != "ok\n" {
		t.Fatalf("healthz without the token: %q, %v", body, err)
	}
}
