package httpsink

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	readable := filepath.Join(dir, "ok.pem")
	if err := os.WriteFile(readable, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	cases := []struct {
		name string
		mut  func(*Config)
		want map[string]string // field -> part of the reason; empty: valid
	}{
		{"defaults with a url", func(c *Config) {}, nil},
		{"https with tls files", func(c *Config) {
			c.URL = "https://audit.internal/events"
			c.TLS = TLSConfig{CAFile: readable, CertFile: readable, KeyFile: readable, ServerName: "audit"}
		}, nil},
		{"lower-case method", func(c *Config) { c.Method = "put" }, nil},
		{"no url", func(c *Config) { c.URL = "" }, map[string]string{"url": "is required"}},
		{"relative url", func(c *Config) { c.URL = "/events" }, map[string]string{"url": "absolute http"}},
		{"ftp url", func(c *Config) { c.URL = "ftp://host/x" }, map[string]string{"url": "absolute http"}},
		{"url without host", func(c *Config) { c.URL = "http:///x" }, map[string]string{"url": "absolute http"}},
		{"bad mode", func(c *Config) { c.Mode = "grpc" }, map[string]string{"mode": `not "grpc"`}},
		{"bad method", func(c *Config) { c.Method = "GET" }, map[string]string{"method": "POST or PUT"}},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, map[string]string{"timeout": "positive"}},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, map[string]string{"concurrency": "1 to 256"}},
		{"too much concurrency", func(c *Config) { c.Concurrency = 257 }, map[string]string{"concurrency": "not 257"}},
		{"batch limits", func(c *Config) { c.BatchMaxEvents, c.BatchMaxBytes = 0, 100 },
			map[string]string{"batch_max_events": "at least 1", "batch_max_bytes": "at least 1024"}},
		{"headers", func(c *Config) {
			c.Headers = map[string]ferry.Secret{"Bad Name": "v", "content-type": "text/plain", "ce-id": "x", "X-Token": "a\r\nInjected: s3cret"}
		}, map[string]string{"headers.Bad Name": "not a valid header name", "headers.content-type": "managed by the sink",
			"headers.ce-id": "managed by the sink", "headers.X-Token": "line breaks"}},
		{"tls files", func(c *Config) {
			c.URL = "https://audit.internal/events"
			c.TLS = TLSConfig{CAFile: missing, CertFile: readable}
		}, map[string]string{"tls.ca_file": "no such file", "tls": "cert_file and key_file must be set together"}},
		{"tls with http", func(c *Config) { c.TLS.InsecureSkipVerify = true }, map[string]string{"tls": "url is not https"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = "http://127.0.0.1:8080/events"
			c.mut(cfg)
			got := fieldErrors(t, ferry.CheckConfig(cfg))
			if len(got) != len(c.want) {
				t.Fatalf("Validate = %v, want problems with %v", got, slices.Sorted(maps.Keys(c.want)))
			}
			for field, reason := range c.want {
				if !strings.Contains(got[field], reason) {
					t.Errorf("%s: %q, want it to mention %q", field, got[field], reason)
				}
			}
			for _, msg := range got {
				if strings.Contains(msg, "s3cret") {
					t.Errorf("a header value leaked into %q", msg)
				}
			}
		})
	}
}

// fieldErrors maps each *ferry.FieldError in a joined error to its reason.
func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err == nil {
		return out
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *ferry.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *ferry.FieldError", e)
		}
		out[fe.Field] = fe.Err.Error()
	}
	return out
}

func TestNewRejectsUnusableTLSFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []TLSConfig{{CAFile: junk}, {CertFile: junk, KeyFile: junk}} {
		cfg := DefaultConfig()
		cfg.URL, cfg.TLS = "https://audit.internal/", tc
		if _, err := New("audit", cfg, nil); err == nil || !strings.Contains(err.Error(), "tls.") {
			t.Errorf("New with %+v = %v, want an error naming the tls key", tc, err)
		}
	}
}

func TestTLS(t *testing.T) {
	r := receiver.New()
	srv := httptest.NewUnstartedServer(r)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert} // asked for, not verified
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)         // handshake failures are expected
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", srv.Certificate().Raw)
	clientCert, clientKey := clientKeyPair(t, dir)
	var sawClientCert bool
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sawClientCert = len(req.TLS.PeerCertificates) > 0
		r.ServeHTTP(w, req)
	})
	cases := []struct {
		name       string
		tls        TLSConfig
		ok, client bool
	}{
		{"trusted by ca_file", TLSConfig{CAFile: ca}, true, false},
		{"client certificate", TLSConfig{CAFile: ca, CertFile: clientCert, KeyFile: clientKey}, true, true},
		{"system roots do not trust a test CA", TLSConfig{}, false, false},
		{"insecure_skip_verify", TLSConfig{InsecureSkipVerify: true}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newSink(t, srv.URL, func(cfg *Config) { cfg.TLS = c.tls })
			err := s.Write(context.Background(), conntest.Events(1, 1))
			if (err == nil) != c.ok {
				t.Fatalf("Write = %v, want ok=%v", err, c.ok)
			}
			if err != nil && ferry.IsPermanent(err) {
				t.Errorf("a TLS failure should be transient: %v", err)
			}
			if c.ok && sawClientCert != c.client {
				t.Errorf("server saw a client certificate: %v, want %v", sawClientCert, c.client)
			}
		})
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientKeyPair writes a self-signed client certificate and its key.
func clientKeyPair(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "client.pem", "CERTIFICATE", der), writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)
}
