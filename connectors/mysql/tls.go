package mysql

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// TLS modes of the `tls.mode` key, as the MySQL client's --ssl-mode names
// them. PREFERRED (try TLS, fall back to plain text) is left out on purpose:
// it lets an active attacker downgrade the connection silently.
const (
	tlsDisabled   = "disabled"    // plain text
	tlsRequired   = "required"    // encrypted; any server certificate
	tlsVerifyCA   = "verify-ca"   // encrypted; certificate signed by a trusted CA
	tlsVerifyFull = "verify-full" // verify-ca, and the certificate names the host
)

// TLSConfig is the source's `tls` block.
type TLSConfig struct {
	// Mode is disabled (the default), required, verify-ca or verify-full.
	Mode string `yaml:"mode" ferry:"enum=disabled|required|verify-ca|verify-full"`
	// CAFile holds the PEM CA certificates trusted for verify-ca and
	// verify-full instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key, for
	// accounts created with REQUIRE X509; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verify-full expects in the certificate;
	// default the host of addr.
	ServerName string `yaml:"server_name"`
}

func (t *TLSConfig) validate() []error {
	var errs []error
	switch t.Mode {
	case "", tlsDisabled:
		if t.CAFile != "" || t.CertFile != "" || t.ServerName != "" {
			errs = append(errs, ferry.Invalid("tls.mode", "is disabled but other tls keys are set: set mode to required, verify-ca or verify-full"))
		}
		return errs
	case tlsRequired:
		if t.CAFile != "" {
			errs = append(errs, ferry.Invalid("tls.ca_file", "is not checked in mode required: use verify-ca or verify-full"))
		}
	case tlsVerifyCA, tlsVerifyFull:
	default:
		return append(errs, ferry.Invalid("tls.mode", "must be disabled, required, verify-ca or verify-full, not %q", t.Mode))
	}
	shared := tlsconfig.Config{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile}
	return append(errs, shared.Validate("tls")...)
}

// build returns the client TLS configuration for addr, nil when disabled.
func (t *TLSConfig) build(addr string) (*tls.Config, error) {
	if t.Mode == "" || t.Mode == tlsDisabled {
		return nil, nil
	}
	shared := tlsconfig.Config{Enable: true, CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	c, err := shared.Build()
	if err != nil {
		return nil, err
	}
	if c.ServerName == "" {
		c.ServerName, _, _ = net.SplitHostPort(addr)
	}
	switch t.Mode {
	case tlsRequired:
		c.InsecureSkipVerify = true
	case tlsVerifyCA:
		// Go verifies the chain and the name together; verify-ca checks the
		// chain alone, for servers whose certificate names another host.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	}
	return c, nil
}

// verifyChain checks the server certificate chains to roots (nil: the
// system roots), whatever name it carries.
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	if err != nil {
		return fmt.Errorf("verify-ca: %w", err)
	}
	return nil
}
