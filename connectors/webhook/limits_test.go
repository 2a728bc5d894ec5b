package webhook_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/connectors/webhook"
)

// slowConn connects from localIP, sends a request's headers announcing a
// body, and one byte of it: the start of a slow-body attack.
func slowConn(t *testing.T, localIP, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", localIP, err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", path)
	return c
}

// completeRequest sends a whole (unsigned) request from localIP.
func completeRequest(t *testing.T, localIP, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", localIP, err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", path)
	return c
}

// answered reports whether any response byte arrives on c within d.
func answered(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, _ := c.Read(make([]byte, 1))
	return n > 0
}

// closedSoon reports whether the server closes c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !errors.As(err, &ne) || !ne.Timeout()
		}
	}
}

func signedPost(t *testing.T, url, secret, body string) *http.Response {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("signed request: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestIngressLimits: a slow-body flood from several addresses fills the
// per-address and total caps; beyond the per-address cap connections are
// held unserved (then closed at body_timeout); a signed request still gets its 200 (taking a slow
// connection's place); oversized headers get 431; a body that does not
// arrive within body_timeout loses its connection.
func TestIngressLimits(t *testing.T) {
	const secret, perIP, total = "limits-secret", 8, 32
	f := start(t, func(c *webhook.Config) {
		c.Verify = webhook.Verify{Scheme: "hmac-sha256", Header: "X-Signature", Secret: secret, Encoding: "hex"}
		c.Limits = webhook.Limits{MaxConnections: total, MaxConnectionsPerIP: perIP, MaxHeaderBytes: 4096,
			HeaderTimeout: 2 * time.Second, BodyTimeout: 4 * time.Second}
	})
	addr := f.src.Addr()
	path := f.url[strings.Index(f.url[len("http://"):], "/")+len("http://"):]
	var flood []net.Conn
	for ip := 2; len(flood) < total; ip++ {
		for range perIP {
			flood = append(flood, slowConn(t, fmt.Sprintf("127.0.0.%d", ip), addr, path))
		}
	}
	extra := completeRequest(t, "127.0.0.2", addr, path)
	if answered(extra, time.Second) {
		t.Fatal("a connection beyond max_connections_per_ip was served")
	}
	if resp := signedPost(t, f.url, secret, `{"order":1}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed request during the flood: %d", resp.StatusCode)
	}
	if b := f.read(t); len(b.Changes) != 1 {
		t.Fatalf("accepted request gave %d changes", len(b.Changes))
	}
	evicted := 0
	for _, c := range flood {
		if closedSoon(c, 10*time.Millisecond) {
			evicted++
		}
	}
	if evicted == 0 {
		t.Error("the signed request was answered, but no slow connection made room for it")
	}

	big := slowConnHeaders(t, addr, path, strings.Repeat("a", 8192))
	if line, _ := bufio.NewReader(big).ReadString('\n'); !strings.Contains(line, "431") {
		t.Errorf("oversized headers answered %q, want 431", line)
	}

	survivor := flood[len(flood)-1]
	if !closedSoon(survivor, 6*time.Second) {
		t.Error("a body still arriving after body_timeout kept its connection")
	}
	if !closedSoon(extra, 2*time.Second) {
		t.Error("a refused connection was held past body_timeout")
	}
}

// slowConnHeaders sends a request whose header X-Big holds value.
func slowConnHeaders(t *testing.T, addr, path, value string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\n{}", path, value)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestLimitsValidate(t *testing.T) {
	for _, l := range []webhook.Limits{
		{MaxConnections: 0, MaxConnectionsPerIP: 1, MaxHeaderBytes: 4096, HeaderTimeout: time.Second, BodyTimeout: time.Second},
		{MaxConnections: 4, MaxConnectionsPerIP: 5, MaxHeaderBytes: 4096, HeaderTimeout: time.Second, BodyTimeout: time.Second},
		{MaxConnections: 4, MaxConnectionsPerIP: 1, MaxHeaderBytes: 10, HeaderTimeout: time.Second, BodyTimeout: time.Second},
		{MaxConnections: 4, MaxConnectionsPerIP: 1, MaxHeaderBytes: 4096, HeaderTimeout: time.Second, BodyTimeout: time.Millisecond},
	} {
		cfg := webhook.DefaultConfig()
		cfg.Path, cfg.Limits = "/x", l
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "limits.") {
			t.Errorf("limits %+v: %v, want an error on limits", l, err)
		}
	}
}
