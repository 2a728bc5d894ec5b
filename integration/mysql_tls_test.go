package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestMySQLTLS: the source encrypts its connections when tls.mode asks,
// verifies the server as verify-ca/verify-full say, and refuses (exit 1,
// naming the cause, no retry loop) what does not verify.
func TestMySQLTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t, dir, "ca.pem", "Ferry test CA")
	newCA(t, dir, "other-ca.pem", "Some other CA")
	writeServerCert(t, dir, ca, caKey, []string{"db.internal"}, []net.IP{net.ParseIP("127.0.0.1")})
	srv := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 9, ExtraArgs: []string{
		"--ssl-ca=" + filepath.Join(dir, "ca.pem"), "--ssl-cert=" + filepath.Join(dir, "server.pem"), "--ssl-key=" + filepath.Join(dir, "server-key.pem")}})
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")

	for _, tc := range []struct {
		name, tls string
		server    *mariadbtest.Server
		want      string // "" streams; else the error on stderr
	}{
		{"required", "{mode: required}", srv, ""},
		{"verify-full", fmt.Sprintf("{mode: verify-full, ca_file: %s}", filepath.Join(dir, "ca.pem")), srv, ""},
		{"verify-ca with another name", fmt.Sprintf("{mode: verify-ca, ca_file: %s, server_name: elsewhere}", filepath.Join(dir, "ca.pem")), srv, ""},
		{"verify-full with another name", fmt.Sprintf("{mode: verify-full, ca_file: %s, server_name: elsewhere}", filepath.Join(dir, "ca.pem")), srv, "does not name this host"},
		{"verify-full with another CA", fmt.Sprintf("{mode: verify-full, ca_file: %s}", filepath.Join(dir, "other-ca.pem")), srv, "not signed by a trusted CA"},
		{"verify-ca with another CA", fmt.Sprintf("{mode: verify-ca, ca_file: %s}", filepath.Join(dir, "other-ca.pem")), srv, "not signed by a trusted CA"},
		{"required without TLS on the server", "{mode: required}", shared, "does not offer TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := receiver.New()
			dbName := name
			if tc.server == shared {
				dbName, _ = newDB(t, shared)
			}
			cfg := pipelineConfig{server: tc.server, db: dbName, start: "latest", url: receiver.Start(t, r), extra: "    tls: " + tc.tls}.yaml(t, t.TempDir())
			if tc.want != "" {
				code, _, errOut := runFerry(t, 30*time.Second, "run", "-c", cfg)
				if code != 1 || !strings.Contains(errOut, tc.want) {
					t.Fatalf("exit %d, want 1 with %q:\n%s", code, tc.want, tailLines(errOut, 5))
				}
				return
			}
			before := sslAccepts(t, tc.server)
			p := startFerry(t, cfg)
			eventually(t, 30*time.Second, "ferry streaming", func() bool { return strings.Contains(p.stderr.String(), "streaming") || r.Count() > 0 })
			exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d)", len(tc.name)*1000+int(time.Now().UnixNano()%1000)))
			eventually(t, 30*time.Second, "the row over TLS", func() bool { return r.Count() >= 1 })
			if p.stop() != 0 {
				t.Fatal("ferry did not stop cleanly")
			}
			if n := sslAccepts(t, tc.server); n < before+2 {
				t.Fatalf("the server accepted %d TLS connections during the run, want the metadata and the binlog connections", n-before)
			}
		})
	}
}

// sslAccepts is the server's count of accepted TLS handshakes.
func sslAccepts(t *testing.T, s *mariadbtest.Server) int {
	t.Helper()
	var name string
	var n int
	if err := s.DB(t, "").QueryRow("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'").Scan(&name, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t *testing.T, dir, file, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, file), "CERTIFICATE", der)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func writeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, names []string, ips []net.IP) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, IPAddresses: ips, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server-key.pem"), "PRIVATE KEY", kder)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
