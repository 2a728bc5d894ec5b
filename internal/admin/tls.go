package admin

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ServerTLS is the admin listener's TLS: its certificate, and when
// clientCAFile is set, the CAs a client certificate must chain to (asked
// for, not demanded, at the handshake: the probes stay reachable without
// one; access refuses every other endpoint to a client without one).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("admin tls certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("admin tls client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("admin tls client_ca_file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ClientTLS is how the CLI on the same host reaches a TLS admin listener:
// it trusts exactly the listener's certificate (read from the same file,
// so no name or CA has to match) and presents the client certificate
// clientCert/clientKey when both are set.
func ClientTLS(serverCertFile, clientCert, clientKey string) (*tls.Config, error) {
	leaf, err := firstCertificate(serverCertFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is the pin below, not a CA chain and a host name.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
				return errors.New("the admin listener's certificate is not the one in admin.tls.cert_file")
			}
			return nil
		},
	}
	if clientCert != "" || clientKey != "" {
		cert, err := tls.LoadX509KeyPair(clientCert, clientKey)
		if err != nil {
			return nil, fmt.Errorf("admin client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// firstCertificate returns the DER bytes of the file's first certificate:
// the leaf, as the listener sends it.
func firstCertificate(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("admin tls cert_file: %w", err)
	}
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return nil, fmt.Errorf("admin tls cert_file %s: no PEM certificate in it", file)
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}
