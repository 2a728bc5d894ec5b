package admin

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// TestPprofNeedsToken serves the profiles over a real listener: without
// the bearer token (or with a wrong one) every pprof path answers 401, with
// it a CPU and a heap profile parse as pprof protobufs; without a token, or
// with pprof off, the paths do not exist.
func TestPprofNeedsToken(t *testing.T) {
	base := startAdmin(t, Options{Token: "s3cret", Pprof: true})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1", "/debug/pprof/goroutine?debug=2", "/debug/pprof/cmdline"} {
		for _, auth := range []string{"", "Bearer wrong"} {
			if code, _ := get(t, base+path, auth); code != http.StatusUnauthorized {
				t.Errorf("GET %s with %q: %d, want 401", path, auth, code)
			}
		}
	}
	// A profile is a gzipped protobuf whose string table names its
	// sample types.
	for path, sampleType := range map[string]string{"/debug/pprof/profile?seconds=1": "nanoseconds", "/debug/pprof/heap": "inuse_space"} {
		code, body := get(t, base+path, "Bearer s3cret")
		if code != http.StatusOK {
			t.Fatalf("GET %s with the token: %d: %s", path, code, body)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("GET %s: not a gzipped profile: %v", path, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if !bytes.Contains(raw, []byte(sampleType)) {
			t.Fatalf("GET %s: profile does not name the sample type %q", path, sampleType)
		}
	}
	for _, opts := range []Options{{Token: "s3cret"}, {Pprof: true}} {
		base := startAdmin(t, opts)
		auth := ""
		if opts.Token != "" {
			auth = "Bearer " + opts.Token
		}
		if code, _ := get(t, base+"/debug/pprof/heap", auth); code != http.StatusNotFound {
			t.Errorf("token set %v, pprof %v: /debug/pprof/heap answered %d, want 404", opts.Token != "", opts.Pprof, code)
		}
	}
}

func startAdmin(t *testing.T, opts Options) string {
	t.Helper()
	opts.Addr, opts.Metrics = "127.0.0.1:0", telemetry.New("test")
	srv, err := Listen(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + srv.Addr()
}

func get(t *testing.T, url, auth string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}
