package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// tokenIssuer is a client credentials token endpoint: it issues opaque
// tokens to one client and remembers them, as an authorization server
// whose restarts keep its signing key (tokens issued before stay valid).
type tokenIssuer struct {
	id, secret string
	life       time.Duration

	mu      sync.Mutex
	issued  map[string]time.Time // token -> expiry
	grants  int
	refused int
}

func (ti *tokenIssuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if r.PostForm.Get("grant_type") != "client_credentials" || id != ti.id || secret != ti.secret {
		ti.refused++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	ti.grants++
	tok := fmt.Sprintf("tok-%d-%d", ti.grants, time.Now().UnixNano())
	ti.issued[tok] = time.Now().Add(ti.life)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(ti.life.Seconds())})
}

// valid reports whether an Authorization header carries a live token.
func (ti *tokenIssuer) valid(auth string) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	ti.mu.Lock()
	defer ti.mu.Unlock()
	exp, known := ti.issued[tok]
	return ok && known && time.Now().Before(exp)
}

func (ti *tokenIssuer) tokens() []string {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	var out []string
	for t := range ti.issued {
		out = append(out, t)
	}
	return out
}

// serveOn serves ti on addr ("127.0.0.1:0" for any port) until the
// returned stop is called.
func (ti *tokenIssuer) serveOn(t *testing.T, addr string) (string, func()) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port of a stopped instance may take a moment to free
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("token endpoint listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: ti, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	var once sync.Once
	stop := func() { once.Do(func() { _ = srv.Close() }) }
	t.Cleanup(stop)
	return l.Addr().String(), stop
}

// bearerGate lets requests with a live token through to the receiver and
// answers 401 to the others, counting them.
type bearerGate struct {
	issuer *tokenIssuer
	recv   *receiver.Receiver

	mu                sync.Mutex
	accepted, refused int
	missing           int // requests without any Authorization
}

func (g *bearerGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	ok := g.issuer.valid(auth)
	g.mu.Lock()
	switch {
	case ok:
		g.accepted++
	case auth == "":
		g.missing++
		g.refused++
	default:
		g.refused++
	}
	g.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	g.recv.ServeHTTP(w, r)
}

func (g *bearerGate) counts() (accepted, refused, missing int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepted, g.refused, g.missing
}

// TestOutboundOAuth2ClientCredentials: row changes go from MariaDB through
// a ferry binary to an HTTP sink with an `oauth2:` block whose secret comes
// from the environment. The endpoint accepts only live tokens of the token
// endpoint, which issues short-lived ones and is stopped for a while
// mid-run (tokens expire meanwhile) and started again on its address.
// Every event arrives, each in a request with a live bearer token, none
// without one; neither the client secret nor a token is in ferry's log.
func TestOutboundOAuth2ClientCredentials(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2))")
	const secret = "s3cr3t-client-Pa55-7f2c"
	// golang.org/x/oauth2 renews a token 10 s before its expiry: 12 s
	// makes every token live 2 s for the sink, so the outage needs new ones.
	issuer := &tokenIssuer{id: "ferry-erp", secret: secret, life: 12 * time.Second, issued: map[string]time.Time{}}
	tokenAddr, stopTokens := issuer.serveOn(t, "127.0.0.1:0")
	gate := &bearerGate{issuer: issuer, recv: receiver.New()}
	srv := httptest.NewServer(gate)
	t.Cleanup(srv.Close)
	endpoint := srv.URL
	cfg := pipelineConfig{server: shared, db: name, start: start, url: endpoint + "/erp", mode: "batch",
		sinks: "    batch_max_events: 5\n" +
			"    oauth2:\n" +
			"      token_url: http://" + tokenAddr + "/oauth/token\n" +
			"      client_id: ferry-erp\n" +
			"      client_secret: \"${ERP_OAUTH_SECRET}\"\n" +
			"      scopes: [erp.write]\n"}.yaml(t, t.TempDir())
	p := startFerry(t, cfg, "ERP_OAUTH_SECRET="+secret)

	const perPhase = 30
	insert := func(phase int) {
		for i := range perPhase {
			id := phase*perPhase + i
			exec1(t, db, fmt.Sprintf("INSERT INTO orders VALUES (%d, %d.25)", id, id))
		}
	}
	insert(0)
	eventually(t, 60*time.Second, "the first rows delivered", func() bool { return distinct(gate.recv.Events()) == perPhase })
	stopTokens()
	insert(1)
	time.Sleep(3 * time.Second) // every token the sink holds expires meanwhile
	insert(2)
	// The sink must have met the endpoint down before it comes back.
	eventually(t, 60*time.Second, "the sink reporting the token endpoint down", func() bool {
		return strings.Contains(p.stderr.String(), "oauth2 token endpoint")
	})
	issuer.serveOn(t, tokenAddr)
	eventually(t, 90*time.Second, "every row change delivered", func() bool { return distinct(gate.recv.Events()) == 3*perPhase })
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry exited %d", code)
	}

	accepted, refused, missing := gate.counts()
	if missing > 0 {
		t.Errorf("%d requests reached the endpoint without a token", missing)
	}
	issuer.mu.Lock()
	grants, badClients := issuer.grants, issuer.refused
	issuer.mu.Unlock()
	if badClients > 0 {
		t.Errorf("the token endpoint refused the client %d times", badClients)
	}
	if grants < 2 {
		t.Errorf("%d tokens issued: the sink did not renew its expired token", grants)
	}
	log := p.stderr.String()
	if strings.Contains(log, secret) {
		t.Fatal("the client secret is in ferry's log")
	}
	for _, tok := range issuer.tokens() {
		if strings.Contains(log, tok) {
			t.Fatalf("access token %s is in ferry's log", tok)
		}
	}
	for line := range strings.Lines(log) {
		if strings.Contains(line, "oauth2 token endpoint") {
			t.Logf("while the token endpoint was down: %s", strings.TrimSpace(line))
			break
		}
	}
	t.Logf("%d requests accepted, %d refused (expired tokens), %d tokens issued", accepted, refused, grants)
}
