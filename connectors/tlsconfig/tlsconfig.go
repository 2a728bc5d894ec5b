// Package tlsconfig is the `tls` block connectors share: trusted CA,
// client certificate, server name, and (for tests) skipping verification.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/ferry-cdc/ferry"
)

// Config is a connector's `tls` key. The zero value means Go's defaults
// (system roots, no client certificate).
type Config struct {
	// Enable turns TLS on with only Go's defaults, for protocols whose
	// address does not say (Kafka); any other key set enables it too.
	Enable bool `yaml:"enable"`
	// CAFile holds the PEM certificates trusted instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate and key, for
	// servers that require one; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server certificate must carry.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// IsZero reports whether nothing is set.
func (t *Config) IsZero() bool { return *t == Config{} }

// Validate checks the files are readable and cert/key come together. Field
// names are prefixed with prefix (usually "tls").
func (t *Config) Validate(prefix string) []error {
	var errs []error
	for _, f := range []struct{ field, path string }{
		{prefix + ".ca_file", t.CAFile}, {prefix + ".cert_file", t.CertFile}, {prefix + ".key_file", t.KeyFile},
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
		errs = append(errs, ferry.Invalid(prefix, "cert_file and key_file must be set together"))
	}
	return errs
}

// Build returns the client TLS configuration, or nil when Go's defaults do.
func (t *Config) Build() (*tls.Config, error) {
	if t.IsZero() {
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
