// Package httpsink (import path .../connectors/http) delivers CloudEvents to
// an HTTP endpoint with the CloudEvents HTTP protocol binding: binary mode
// (ce-* headers, data as the body), structured mode (the whole event as
// application/cloudevents+json) or batch mode (a JSON array,
// application/cloudevents-batch+json).
package httpsink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: http` sink block.
type Config struct {
	URL            string                  `yaml:"url"`
	Mode           string                  `yaml:"mode"`   // binary | structured | batch
	Method         string                  `yaml:"method"` // POST | PUT
	Headers        map[string]ferry.Secret `yaml:"headers"`
	Timeout        time.Duration           `yaml:"timeout"`
	Concurrency    int                     `yaml:"concurrency"`
	BatchMaxEvents int                     `yaml:"batch_max_events"`
	BatchMaxBytes  int                     `yaml:"batch_max_bytes"`
	TLS            TLSConfig               `yaml:"tls"`
}

// TLSConfig configures HTTPS beyond the system roots.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config {
	return &Config{Mode: "binary", Method: http.MethodPost, Timeout: 10 * time.Second,
		Concurrency: 8, BatchMaxEvents: 100, BatchMaxBytes: 1 << 20}
}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, ferry.Invalid("url", "is required"))
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, ferry.Invalid("url", "must be an absolute http:// or https:// URL"))
	}
	if c.Mode != "binary" && c.Mode != "structured" && c.Mode != "batch" {
		errs = append(errs, ferry.Invalid("mode", "must be binary, structured or batch, not %q", c.Mode))
	}
	if c.Method != http.MethodPost && c.Method != http.MethodPut {
		errs = append(errs, ferry.Invalid("method", "must be POST or PUT, not %q", c.Method))
	}
	if c.Timeout <= 0 {
		errs = append(errs, ferry.Invalid("timeout", "must be positive"))
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, ferry.Invalid("concurrency", "must be from 1 to 256"))
	}
	if c.BatchMaxEvents < 1 {
		errs = append(errs, ferry.Invalid("batch_max_events", "must be at least 1"))
	}
	if c.BatchMaxBytes < 1024 {
		errs = append(errs, ferry.Invalid("batch_max_bytes", "must be at least 1024"))
	}
	errs = append(errs, c.TLS.validate()...)
	return errors.Join(errs...)
}

func (t *TLSConfig) validate() []error {
	var errs []error
	for field, path := range map[string]string{"tls.ca_file": t.CAFile, "tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, ferry.Invalid(field, "cannot read %s: %v", path, errors.Unwrap(err)))
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, ferry.Invalid("tls", "cert_file and key_file go together"))
	}
	return errs
}

// build returns the tls.Config, or nil when the defaults do.
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
			return nil, fmt.Errorf("load tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
