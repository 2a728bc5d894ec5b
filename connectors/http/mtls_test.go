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
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial = struct {
	sync.Mutex
	n int64
}{}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and key, PEM-encoded, for a server
// (127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMutualTLS: an endpoint requiring client certificates from its CA
// gets the one in tls.cert_file; without it, or with a certificate from
// another CA, the request fails (transient: the operator fixes the files
// while the events wait) with an error saying what to set.
func TestMutualTLS(t *testing.T) {
	ca, stranger := newTestCA(t, "ferry test CA"), newTestCA(t, "another CA")
	dir := t.TempDir()
	srvCert, srvKey := ca.issue(t, "erp.internal", true)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(ca.cert)
	var mu sync.Mutex
	var peers []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		peers = append(peers, r.TLS.PeerCertificates[0].Subject.CommonName)
		mu.Unlock()
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	cert, key := ca.issue(t, "ferry-client", false)
	certFile, keyFile := writeFile(t, dir, "client.pem", cert), writeFile(t, dir, "client.key", key)
	cert, key = stranger.issue(t, "stranger", false)
	strangerCert, strangerKey := writeFile(t, dir, "stranger.pem", cert), writeFile(t, dir, "stranger.key", key)

	s, _ := newSink(t, srv.URL, func(c *Config) { c.TLS = TLSConfig{CAFile: caFile, CertFile: certFile, KeyFile: keyFile} })
	if err := s.Write(context.Background(), conntest.Events(3, 3)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(peers) != 3 || peers[0] != "ferry-client" {
		t.Fatalf("the endpoint saw client certificates %q, want ferry-client on each of 3 requests", peers)
	}
	mu.Unlock()

	for _, c := range []struct {
		name, cert, key, want string
	}{
		{"no client certificate", "", "", "the endpoint requires a client certificate: set tls.cert_file and tls.key_file"},
		{"certificate from another CA", strangerCert, strangerKey, "the endpoint did not accept the client certificate in tls.cert_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newSink(t, srv.URL, func(cfg *Config) { cfg.TLS = TLSConfig{CAFile: caFile, CertFile: c.cert, KeyFile: c.key} })
			err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
			if ferry.IsPermanent(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want transient saying %q", err, c.want)
			}
			t.Log(err)
		})
	}
}
