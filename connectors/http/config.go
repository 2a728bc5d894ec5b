package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// The modes of the `mode` key.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
	ModeBatch      = "batch"
)

// Bounds of the numeric keys.
const (
	maxConcurrency = 256
	minBatchBytes  = 1024
)

// Config is the `type: http` sink block. Start from DefaultConfig.
type Config struct {
	// URL is the absolute http:// or https:// endpoint. Required.
	URL string `yaml:"url"`
	// Mode is binary, structured or batch.
	Mode string `yaml:"mode"`
	// Method is POST or PUT.
	Method string `yaml:"method"`
	// Headers are added to every request. Their values are secrets.
	Headers map[string]ferry.Secret `yaml:"headers"`
	// Timeout bounds each request, from sending it to reading the answer.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is how many requests one Write runs in parallel (1-256).
	Concurrency int `yaml:"concurrency"`
	// BatchMaxEvents and BatchMaxBytes bound one request in batch mode.
	BatchMaxEvents int `yaml:"batch_max_events"`
	BatchMaxBytes  int `yaml:"batch_max_bytes"`
	// TLS configures https beyond the system's trusted roots.
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig is the `tls` key.
type TLSConfig struct {
	// CAFile holds the PEM certificates trusted instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and key, for
	// endpoints that require one; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server certificate must carry.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config {
	return &Config{
		Mode:           ModeBinary,
		Method:         http.MethodPost,
		Timeout:        10 * time.Second,
		Concurrency:    8,
		BatchMaxEvents: 100,
		BatchMaxBytes:  1 << 20,
	}
}

// Validate reports every invalid key, each as a *ferry.FieldError, joined.
// It reads the TLS files to check they are readable but does not parse them
// (New does).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, ferry.Invalid(field, format, args...)) }
	https := false
	if c.URL == "" {
		bad("url", "is required")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "must be an absolute http:// or https:// URL")
	} else {
		https = u.Scheme == "https"
	}
	switch c.Mode {
	case ModeBinary, ModeStructured, ModeBatch:
	default:
		bad("mode", "must be binary, structured or batch, not %q", c.Mode)
	}
	if m := strings.ToUpper(c.Method); m != http.MethodPost && m != http.MethodPut {
		bad("method", "must be POST or PUT, not %q", c.Method)
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, like 10s")
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		bad("concurrency", "must be from 1 to %d, not %d", maxConcurrency, c.Concurrency)
	}
	if c.BatchMaxEvents < 1 {
		bad("batch_max_events", "must be at least 1, not %d", c.BatchMaxEvents)
	}
	if c.BatchMaxBytes < minBatchBytes {
		bad("batch_max_bytes", "must be at least %d, not %d", minBatchBytes, c.BatchMaxBytes)
	}
	errs = append(errs, validateHeaders(c.Headers)...)
	errs = append(errs, c.TLS.validate(https || c.URL == "")...)
	return errors.Join(errs...)
}

// reservedHeaders are managed by the sink: the protocol binding sets the
// content headers and ce-* attributes, net/http the connection headers.
var reservedHeaders = map[string]bool{"Content-Type": true, "Content-Length": true,
	"Transfer-Encoding": true, "Host": true, "Connection": true}

// validateHeaders checks names and values; errors never include a value.
func validateHeaders(h map[string]ferry.Secret) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(h)) {
		value := h[name]
		field := "headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !isToken(name):
			errs = append(errs, ferry.Invalid(field, "is not a valid header name"))
		case reservedHeaders[canon] || strings.HasPrefix(canon, "Ce-"):
			errs = append(errs, ferry.Invalid(field, "is managed by the sink (CloudEvents HTTP binding, connection handling) and cannot be configured"))
		case strings.ContainsAny(value.Reveal(), "\r\n\x00"):
			errs = append(errs, ferry.Invalid(field, "value must not contain line breaks or NUL"))
		}
	}
	return errs
}

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x80 || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}\x7f", r) {
			return false
		}
	}
	return true
}

func (t *TLSConfig) validate(httpsOrUnknown bool) []error {
	var errs []error
	if *t != (TLSConfig{}) && !httpsOrUnknown {
		errs = append(errs, ferry.Invalid("tls", "is set but url is not https://"))
	}
	for _, f := range []struct{ field, path string }{
		{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			errs = append(errs, ferry.Invalid(f.field, "cannot read %s: %v", f.path, err))
			continue
		}
		_ = fh.Close()
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, ferry.Invalid("tls", "cert_file and key_file must be set together"))
	}
	return errs
}

// build returns the client TLS configuration, or nil when Go's defaults do.
func (t *TLSConfig) build() (*tls.Config, error) {
	if *t == (TLSConfig{}) {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load tls.cert_file and tls.key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
