package cli

import (
	"bytes"
	"context"
	"github.com/ferry-cdc/ferry/internal/admin"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthCommand(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		case r.URL.Path == "/readyz" && ready.Load():
			_, _ = w.Write([]byte("ready\n"))
		case r.URL.Path == "/readyz":
			http.Error(w, "not ready: sink bus unreachable: connection refused", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	off := filepath.Join(dir, "off.yaml")
	on := filepath.Join(dir, "on.yaml")
	base := "sources: {h: {type: webhook, listen: \"127.0.0.1:0\", path: /h}}\nsinks: {o: {type: stdout}}\nstate: {dir: " + dir + "}\n"
	if err := os.WriteFile(off, []byte(base+"admin: {listen: off}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(on, []byte(base+"admin: {listen: \""+addr+"\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"health"}, args...), Env{Stdout: &out, Stderr: &errb, Version: "test"})
		return code, out.String(), errb.String()
	}
	cases := []struct {
		setReady bool
		args     []string
		code     int
		stdout   string
		stderr   string
	}{
		{true, []string{"--addr", addr}, ExitOK, "ok", ""},
		{true, []string{"--addr", addr, "--ready"}, ExitOK, "ready", ""},
		{false, []string{"--addr", addr, "--ready"}, ExitFailure, "", "answered 503: not ready: sink bus unreachable: connection refused"},
		{false, []string{"--addr", addr}, ExitOK, "ok", ""}, // alive although not ready
		{false, []string{"-c", on, "--ready"}, ExitFailure, "", "503"},
		{true, []string{"-c", on, "--ready", "--timeout", "2s"}, ExitOK, "ready", ""},
		{true, []string{"-c", off}, ExitUsage, "", "admin listener is off"},
		{true, nil, ExitUsage, "", "needs -c CONFIG or --addr"},
		{true, []string{"--addr", "nope"}, ExitUsage, "", "missing port"},
		{true, []string{"--addr", addr, "--timeout", "0s"}, ExitUsage, "", "--timeout must be positive"},
		{true, []string{"-c", filepath.Join(dir, "missing.yaml")}, ExitUsage, "", "cannot read"},
		{true, []string{"--addr", freeLoopbackAddr(t)}, ExitFailure, "", "connection refused"},
	}
	for _, c := range cases {
		ready.Store(c.setReady)
		code, out, errb := run(c.args...)
		if code != c.code || !strings.Contains(out, c.stdout) || !strings.Contains(errb, c.stderr) {
			t.Errorf("ferry health %v = %d\nstdout: %s\nstderr: %s\nwant %d, %q, %q", c.args, code, out, errb, c.code, c.stdout, c.stderr)
		}
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{":9090": "127.0.0.1:9090", "0.0.0.0:9090": "127.0.0.1:9090",
		"[::]:9090": "[::1]:9090", "10.0.0.5:9090": "10.0.0.5:9090", "localhost:1": "localhost:1"} {
		if got := admin.Dialable(in); got != want {
			t.Errorf("Dialable(%q) = %q; want %q", in, got, want)
		}
	}
}

// freeLoopbackAddr returns an address nothing listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	return addr
}
