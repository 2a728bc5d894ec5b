package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// writeCert writes a certificate and key signed by parent (self-signed
// when parent is nil) and returns the files and the certificate.
func writeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (string, string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, DNSNames: []string{"ferry.example"}}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile, cert, key
}

// TestMutualTLS: over mutual TLS the probes answer a client without a
// certificate, everything else needs one the client CA signed, and the
// CLI's client pins the listener's own certificate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, _, ca, caKey := writeCert(t, dir, "ca", nil, nil, true)
	srvCert, srvKey, _, _ := writeCert(t, dir, "server", nil, nil, false)
	cliCert, cliKey, _, _ := writeCert(t, dir, "client", ca, caKey, false)
	strangerCert, strangerKey, _, _ := writeCert(t, dir, "stranger", nil, nil, false)
	tlsCfg, err := ServerTLS(srvCert, srvKey, caFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(Options{Addr: "127.0.0.1:0", Metrics: telemetry.New("test"), Control: &countingControl{}, TLS: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx) }()
	client := func(cert, key string) *Client {
		c, err := ClientTLS(srvCert, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		return NewClient(ClientOptions{Addr: srv.Addr(), TLS: c})
	}
	if body, err := client("", "").Get(ctx, "/healthz"); err != nil || body != "ok\n" {
		t.Fatalf("healthz without a client certificate: %q, %v", body, err)
	}
	if _, err := client("", "").Get(ctx, "/status"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("status without a client certificate: %v, want 401", err)
	}
	if _, err := client(strangerCert, strangerKey).Get(ctx, "/status"); err == nil {
		t.Fatal("status with a certificate the client CA did not sign was answered")
	}
	if _, err := client(cliCert, cliKey).Get(ctx, "/status"); err != nil {
		t.Fatalf("status with the client certificate: %v", err)
	}
	if _, err := client(cliCert, cliKey).Backfills(ctx); err != nil {
		t.Fatalf("backfills with the client certificate: %v", err)
	}
	other, err := ClientTLS(cliCert, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(ClientOptions{Addr: srv.Addr(), TLS: other}).Get(ctx, "/healthz"); err == nil || !strings.Contains(err.Error(), "not the one") {
		t.Fatalf("a client pinning another certificate: %v, want a pin mismatch", err)
	}
}
