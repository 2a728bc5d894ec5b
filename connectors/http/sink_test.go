package httpsink

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func newSink(t *testing.T, url string, mut func(*Config)) (*Sink, *bytes.Buffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	if mut != nil {
		mut(cfg)
	}
	var logs bytes.Buffer
	s, err := New("audit", cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, &logs
}

func TestAcceptance(t *testing.T) {
	for _, mode := range []string{"binary", "structured", "batch"} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			url := receiver.Start(t, r)
			conntest.RunSink(t, conntest.SinkHarness{
				New: func(t *testing.T) ferry.Sink {
					cfg := DefaultConfig()
					cfg.URL, cfg.Mode = url, mode
					s, err := New("audit", cfg, nil)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received: func(*testing.T) []event.Event { return r.Events() },
			})
		})
	}
}

func TestWireFormats(t *testing.T) {
	cases := map[string]string{"binary": "application/json", "structured": "application/cloudevents+json", "batch": "application/cloudevents-batch+json"}
	for mode, contentType := range cases {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			s, _ := newSink(t, receiver.Start(t, r), func(c *Config) { c.Mode = mode })
			if err := s.Write(context.Background(), conntest.Events(3, 1)); err != nil {
				t.Fatal(err)
			}
			req := r.Requests()[0]
			if got := req.Header.Get("Content-Type"); !strings.HasPrefix(got, contentType) {
				t.Errorf("Content-Type = %q, want %q", got, contentType)
			}
			if mode == "binary" && (req.Header.Get("Ce-Id") != "conntest-0" || req.Header.Get("Ce-Partitionkey") != "db.t/0") {
				t.Errorf("binary headers = %v", req.Header)
			}
			if mode == "batch" && len(r.Requests()) != 1 {
				t.Errorf("batch mode sent %d requests for 3 events", len(r.Requests()))
			}
		})
	}
}

func TestStatusClassification(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		permanent  bool
		delay      time.Duration
	}{
		{"server error is transient", 500, "", false, 0},
		{"429 with seconds", 429, "7", false, 7 * time.Second},
		{"503 with date", 503, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), false, 89 * time.Second},
		{"408 is transient", 408, "", false, 0},
		{"400 is permanent", 400, "", true, 0},
		{"404 is permanent", 404, "", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := receiver.New()
			s, _ := newSink(t, receiver.Start(t, r), nil)
			r.FailNext(1, c.status, c.retryAfter)
			err := s.Write(context.Background(), conntest.Events(1, 1))
			var be *ferry.BatchError
			if !errors.As(err, &be) || be.Failed(0) == nil {
				t.Fatalf("Write = %v, want the event failed", err)
			}
			ferr := be.Failed(0)
			if ferry.IsPermanent(ferr) != c.permanent {
				t.Fatalf("permanent = %v for %v", !c.permanent, ferr)
			}
			d, ok := ferry.RetryDelay(ferr)
			if c.delay > 0 && (!ok || d < c.delay || d > c.delay+2*time.Second) {
				t.Fatalf("RetryDelay = %v %v, want about %v", d, ok, c.delay)
			}
			if err := s.Write(context.Background(), conntest.Events(1, 1)); err != nil {
				t.Fatalf("next Write = %v", err)
			}
		})
	}
}

func TestPermanentErrorCarriesBodyButNoSecrets(t *testing.T) {
	const secret = "Bearer s3cr3t-token"
	r := receiver.New()
	r.Reject(func(e event.Event) int { return http.StatusBadRequest })
	s, logs := newSink(t, receiver.Start(t, r), func(c *Config) {
		c.Headers = map[string]ferry.Secret{"Authorization": secret}
	})
	err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)))
	if !ferry.IsPermanent(err) || !strings.Contains(err.Error(), "400 Bad Request: rejected event conntest-0") {
		t.Fatalf("Write = %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(logs.String(), "s3cr3t") {
		t.Fatalf("secret leaked:\nerr=%v\nlogs=%s", err, logs.String())
	}
	if got := r.Requests(); len(got) != 0 {
		t.Fatalf("rejected requests recorded: %d", len(got))
	}
}

// eventErr returns the error of event 0 of a failed Write.
func eventErr(t *testing.T, err error) error {
	t.Helper()
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Failed(0) == nil {
		t.Fatalf("Write = %v, want event 0 failed", err)
	}
	return be.Failed(0)
}

func TestRedirectIsPermanentAndNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, "http://elsewhere.invalid/", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s, _ := newSink(t, srv.URL, nil)
	err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)))
	if !ferry.IsPermanent(err) || !strings.Contains(err.Error(), "elsewhere.invalid") {
		t.Fatalf("Write = %v", err)
	}
}

func TestTimeoutAndUnreachableAreTransient(t *testing.T) {
	r := receiver.New()
	r.SetDelay(300 * time.Millisecond)
	s, _ := newSink(t, receiver.Start(t, r), func(c *Config) { c.Timeout = 50 * time.Millisecond })
	if err := s.Write(context.Background(), conntest.Events(1, 1)); err == nil || ferry.IsPermanent(err) {
		t.Fatalf("timeout: Write = %v, want transient", err)
	}
	s2, _ := newSink(t, "http://127.0.0.1:1/events", nil)
	if err := s2.Write(context.Background(), conntest.Events(1, 1)); err == nil || ferry.IsPermanent(err) {
		t.Fatalf("unreachable: Write = %v, want transient", err)
	}
}

func TestFailingKeyHoldsBackLaterEventsOfThatKeyOnly(t *testing.T) {
	r := receiver.New()
	r.Reject(func(e event.Event) int {
		if e.ID() == "conntest-6" { // key 2 of 4
			return http.StatusServiceUnavailable
		}
		return 0
	})
	s, _ := newSink(t, receiver.Start(t, r), func(c *Config) { c.Concurrency = 4 })
	events := conntest.Events(20, 4)
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v", err)
	}
	for i, e := range events {
		failed := be.Failed(i) != nil
		wantFailed := i >= 6 && e.Subject() == "2"
		if failed != wantFailed {
			t.Errorf("event %d (key %s): failed=%v, want %v", i, e.Subject(), failed, wantFailed)
		}
	}
	for _, e := range r.Events() {
		if e.Subject() == "2" && e.ID() > "conntest-6" && len(e.ID()) >= len("conntest-6") {
			t.Errorf("event %s of the failing key was sent", e.ID())
		}
	}
}

func TestBatchChunking(t *testing.T) {
	r := receiver.New()
	s, _ := newSink(t, receiver.Start(t, r), func(c *Config) {
		c.Mode, c.Concurrency, c.BatchMaxEvents, c.BatchMaxBytes = "batch", 1, 4, 1024
	})
	if err := s.Write(context.Background(), conntest.Events(10, 3)); err != nil {
		t.Fatal(err)
	}
	if n := len(r.Requests()); n < 3 {
		t.Fatalf("10 events with batch_max_events 4 took %d requests", n)
	}
	if r.Count() != 10 {
		t.Fatalf("received %d events", r.Count())
	}
}

func TestTLSWithCustomCA(t *testing.T) {
	r := receiver.New()
	srv := httptest.NewTLSServer(r)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := newSink(t, srv.URL, func(c *Config) { c.TLS.CAFile = ca })
	if err := s.Write(context.Background(), conntest.Events(2, 1)); err != nil {
		t.Fatalf("Write over TLS = %v", err)
	}
	untrusted, _ := newSink(t, srv.URL, nil)
	if err := untrusted.Write(context.Background(), conntest.Events(1, 1)); err == nil {
		t.Fatal("Write to an untrusted certificate succeeded")
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.URL, c.Mode, c.Concurrency, c.Method = "ftp://x", "grpc", 0, "GET"
	c.TLS.CertFile = "/nonexistent.pem"
	err := c.Validate()
	for _, want := range []string{"url: must be an absolute", "mode: must be binary", "concurrency: must be", "method: must be POST", "tls.cert_file: cannot read", "tls: cert_file and key_file go together"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; missing %q", err, want)
		}
	}
}

func benchmarkWrite(b *testing.B, mode string) {
	r := receiver.New()
	r.SetDiscard(true)
	srv := httptest.NewServer(r)
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URL, cfg.Mode, cfg.Concurrency = srv.URL, mode, 16
	s, _ := New("bench", cfg, nil)
	events := conntest.Events(1000, 100)
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkWriteBinary(b *testing.B) { benchmarkWrite(b, "binary") }
func BenchmarkWriteBatch(b *testing.B)  { benchmarkWrite(b, "batch") }
