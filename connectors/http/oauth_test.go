package httpsink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

const (
	testClientID     = "ferry"
	testClientSecret = "client-secret-do-not-log"
)

// tokenServer is a client credentials token endpoint: it checks the
// client, issues tok-1, tok-2... with expires_in, and can fail.
type tokenServer struct {
	*httptest.Server
	mu        sync.Mutex
	expiresIn int
	fail      int  // answer this status with an RFC 6749 error instead
	revoked   bool // every token is refused by the endpoint
	issued    int
	valid     map[string]bool
	forms     []url.Values
}

func newTokenServer(t *testing.T, expiresIn int) *tokenServer {
	ts := &tokenServer{expiresIn: expiresIn, valid: map[string]bool{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.forms = append(ts.forms, r.PostForm)
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case ts.fail != 0:
		w.WriteHeader(ts.fail)
		_, _ = io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"maintenance"}`)
		return
	case r.PostForm.Get("grant_type") != "client_credentials" || id != testClientID || secret != testClientSecret:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"client authentication failed"}`)
		return
	}
	ts.issued++
	tok := fmt.Sprintf("tok-%d", ts.issued)
	ts.valid[tok] = true
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": ts.expiresIn})
}

func (ts *tokenServer) set(f func(*tokenServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

func (ts *tokenServer) issuedCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.issued
}

// isValid reports whether tok was issued and not revoked.
func (ts *tokenServer) isValid(tok string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.valid[tok] && !ts.revoked
}

// restart serves the token endpoint again on the address it had, with
// the tokens it issued, after Close.
func (ts *tokenServer) restart(t *testing.T) {
	ln, err := net.Listen("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", ts.Listener.Addr(), err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(ts.serve)}}
	srv.Start()
	t.Cleanup(srv.Close)
}

// protected serves r behind the token server's tokens: 401 without a valid
// one. It records the Authorization of every request.
type protected struct {
	mu    sync.Mutex
	auths []string
	reqs  []hmacRequest
}

func (p *protected) wrap(ts *tokenServer, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		body, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.auths = append(p.auths, auth)
		p.reqs = append(p.reqs, hmacRequest{r.Header.Clone(), body})
		p.mu.Unlock()
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || !ts.isValid(tok) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}

func (p *protected) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.auths...)
}

// oauthFixture is a token server, a receiver behind it, and a sink using
// both.
type oauthFixture struct {
	tokens *tokenServer
	recv   *receiver.Receiver
	front  *protected
	url    string
}

func newOAuthFixture(t *testing.T, expiresIn int) *oauthFixture {
	f := &oauthFixture{tokens: newTokenServer(t, expiresIn), recv: receiver.New(), front: &protected{}}
	srv := httptest.NewServer(f.front.wrap(f.tokens, f.recv))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/hooks"
	return f
}

func (f *oauthFixture) oauth2() OAuth2Config {
	return OAuth2Config{TokenURL: f.tokens.URL + "/oauth/token", ClientID: testClientID, ClientSecret: testClientSecret,
		Scopes: []string{"events.write"}, EndpointParams: map[string]string{"audience": "erp"}, AuthStyle: "auto"}
}

// noSecrets fails when a credential shows in text (errors, logs).
func noSecrets(t *testing.T, text string) {
	t.Helper()
	for _, s := range []string{testClientSecret, "tok-1", "tok-2", "tok-3"} {
		if strings.Contains(text, s) {
			t.Fatalf("%q leaked into errors or logs:\n%s", s, text)
		}
	}
}

// TestOAuth2TokenIsCachedAndSent: one token serves every request while it
// is valid; the token request carries the client, scopes and parameters.
func TestOAuth2TokenIsCachedAndSent(t *testing.T) {
	f := newOAuthFixture(t, 3600)
	s, logs := newSink(t, f.url, func(c *Config) { c.OAuth2, c.Concurrency = f.oauth2(), 4 })
	for range 2 {
		if err := s.Write(context.Background(), conntest.Events(20, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokens.issuedCount(); n != 1 {
		t.Fatalf("%d tokens fetched for 40 requests, want 1 (cached)", n)
	}
	for _, a := range f.front.seen() {
		if a != "Bearer tok-1" {
			t.Fatalf("Authorization %q, want Bearer tok-1", a)
		}
	}
	form := f.tokens.forms[0]
	if form.Get("scope") != "events.write" || form.Get("audience") != "erp" {
		t.Fatalf("token request form %v, want scope and audience", form)
	}
	if len(f.recv.Events()) != 40 {
		t.Fatalf("%d events delivered, want 40", len(f.recv.Events()))
	}
	noSecrets(t, logs.String())
}

// TestOAuth2ExpiringTokenIsReplaced: the library renews a token 10 s before
// its expiry, so a token issued for 5 s is replaced at every request: each
// request carries a fresh token, never an expired one.
func TestOAuth2ExpiringTokenIsReplaced(t *testing.T) {
	f := newOAuthFixture(t, 5)
	s, _ := newSink(t, f.url, func(c *Config) { c.OAuth2, c.Concurrency = f.oauth2(), 1 })
	if err := s.Write(context.Background(), conntest.Events(3, 1)); err != nil {
		t.Fatal(err)
	}
	seen := f.front.seen()
	if n := f.tokens.issuedCount(); n != 3 || seen[0] == seen[1] || seen[1] == seen[2] {
		t.Fatalf("%d tokens fetched, requests carried %q: want a new token per request", n, seen)
	}
}

// TestOAuth2RefusedTokenIsRefreshedOnce: a token the endpoint refuses
// (revoked before its expiry) is dropped and the request sent once more
// with a new token and a new signature; an endpoint that keeps refusing is
// not asked a third time.
func TestOAuth2RefusedTokenIsRefreshedOnce(t *testing.T) {
	f := newOAuthFixture(t, 3600)
	sign := SignConfig{Scheme: "hmac", Secret: "sign-secret", Header: "X-Signature", Encoding: "hex", TimestampHeader: "X-Timestamp"}
	s, logs := newSink(t, f.url, func(c *Config) {
		c.OAuth2, c.Concurrency, c.Sign, c.TransientStatuses = f.oauth2(), 1, sign, []int{401}
	})
	if err := s.Write(context.Background(), conntest.Events(1, 1)); err != nil {
		t.Fatal(err)
	}
	f.tokens.set(func(ts *tokenServer) { delete(ts.valid, "tok-1") })
	if err := s.Write(context.Background(), conntest.Events(1, 1)); err != nil {
		t.Fatalf("after a revoked token: %v", err)
	}
	if got := f.front.seen(); f.tokens.issuedCount() != 2 || len(got) != 3 || got[1] != "Bearer tok-1" || got[2] != "Bearer tok-2" {
		t.Fatalf("tokens fetched %d, requests carried %q: want tok-1, tok-1 refused, tok-2", f.tokens.issuedCount(), got)
	}
	f.front.mu.Lock()
	for i, r := range f.front.reqs {
		m := hmac.New(sha256.New, []byte("sign-secret"))
		m.Write([]byte(r.header.Get("X-Timestamp") + "."))
		m.Write(r.body)
		if r.header.Get("X-Signature") != hex.EncodeToString(m.Sum(nil)) {
			t.Errorf("request %d: signature does not match its body and timestamp", i)
		}
	}
	f.front.mu.Unlock()

	f.tokens.set(func(ts *tokenServer) { ts.revoked = true })
	before := len(f.front.seen())
	err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
	if n := len(f.front.seen()) - before; n != 2 || ferry.IsPermanent(err) {
		t.Fatalf("an endpoint refusing every token: %d requests, error %v; want 2 and transient (401 listed)", n, err)
	}
	noSecrets(t, logs.String()+err.Error())
	strict, _ := newSink(t, f.url, func(c *Config) { c.OAuth2, c.Sign = f.oauth2(), sign })
	if err := eventErr(t, strict.Write(context.Background(), conntest.Events(1, 1)), 0); !ferry.IsPermanent(err) {
		t.Fatalf("signed, 401 after a new token: %v, want permanent", err)
	}
}

// TestOAuth2TokenEndpointDown: while the token endpoint fails (5xx, or
// nothing listening) nothing is sent and every event fails transiently
// with one line naming the token endpoint; once it is back, the same
// events are all delivered.
func TestOAuth2TokenEndpointDown(t *testing.T) {
	f := newOAuthFixture(t, 3600)
	s, logs := newSink(t, f.url, func(c *Config) { c.OAuth2 = f.oauth2() })
	events := conntest.Events(6, 3)
	check := func(want string) {
		t.Helper()
		err := s.Write(context.Background(), events)
		var be *ferry.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("Write = %v, want every event failed", err)
		}
		t.Logf("event 0: %v", be.Failed(0))
		for i := range events {
			e := be.Failed(i)
			if e == nil || ferry.IsPermanent(e) {
				t.Fatalf("event %d: %v, want a transient failure", i, e)
			}
			var te *TokenError
			if !ferry.IsNotAttempted(e) && (!errors.As(e, &te) || !strings.Contains(e.Error(), want) || strings.Contains(e.Error(), "\n")) {
				t.Fatalf("event %d: %v, want one line saying %q", i, e, want)
			}
			noSecrets(t, e.Error())
		}
	}
	f.tokens.set(func(ts *tokenServer) { ts.fail = http.StatusServiceUnavailable })
	check("oauth2 token endpoint " + f.tokens.URL + "/oauth/token: 503 Service Unavailable (temporarily_unavailable: maintenance)")
	f.tokens.Close()
	check("oauth2 token endpoint " + f.tokens.URL + "/oauth/token: dial tcp")
	if n := len(f.front.seen()); n != 0 {
		t.Fatalf("%d requests sent without a token", n)
	}

	f.tokens.set(func(ts *tokenServer) { ts.fail = 0 })
	f.tokens.restart(t)
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatalf("after the token endpoint recovered: %v", err)
	}
	if got := len(f.recv.Events()); got != len(events) {
		t.Fatalf("%d events delivered after recovery, want %d", got, len(events))
	}
	noSecrets(t, logs.String())
}

// TestOAuth2ClientRefused: a token endpoint refusing the client is a clear
// transient error (the events wait for the operator to fix the
// credentials) that names the keys to check and no secret.
func TestOAuth2ClientRefused(t *testing.T) {
	f := newOAuthFixture(t, 3600)
	for _, style := range []string{"auto", "header", "params"} {
		t.Run(style, func(t *testing.T) {
			o := f.oauth2()
			o.ClientSecret, o.AuthStyle = "wrong-secret-do-not-log", style
			s, logs := newSink(t, f.url, func(c *Config) { c.OAuth2 = o })
			err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
			want := "refused the client: 401 Unauthorized (invalid_client: client authentication failed); check oauth2.client_id"
			if ferry.IsPermanent(err) || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want transient saying %q", err, want)
			}
			if strings.Contains(err.Error()+logs.String(), "wrong-secret-do-not-log") {
				t.Fatal("the client secret leaked")
			}
		})
	}
}

// TestOAuth2ConfigErrors: incomplete blocks are refused with the key.
func TestOAuth2ConfigErrors(t *testing.T) {
	cases := []struct {
		name  string
		o     OAuth2Config
		hdr   map[string]ferry.Secret
		field string
	}{
		{"no token_url", OAuth2Config{ClientID: "a", ClientSecret: testClientSecret}, nil, "oauth2.token_url"},
		{"relative token_url", OAuth2Config{TokenURL: "/token", ClientID: "a", ClientSecret: testClientSecret}, nil, "oauth2.token_url"},
		{"no client_id", OAuth2Config{TokenURL: "https://a/t", ClientSecret: testClientSecret}, nil, "oauth2.client_id"},
		{"no client_secret", OAuth2Config{TokenURL: "https://a/t", ClientID: "a"}, nil, "oauth2.client_secret"},
		{"grant parameter", OAuth2Config{TokenURL: "https://a/t", ClientID: "a", ClientSecret: testClientSecret,
			EndpointParams: map[string]string{"client_secret": "x"}}, nil, "oauth2.endpoint_params.client_secret"},
		{"Authorization header too", OAuth2Config{TokenURL: "https://a/t", ClientID: "a", ClientSecret: testClientSecret},
			map[string]ferry.Secret{"authorization": "Bearer static"}, "headers.authorization"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL, cfg.OAuth2, cfg.Headers = "https://erp.internal/hooks", c.o, c.hdr
			cfg.OAuth2.AuthStyle = "auto"
			err := ferry.CheckConfig(cfg)
			var fe *ferry.FieldError
			found := false
			for _, e := range leaves(err) {
				found = found || (errors.As(e, &fe) && fe.Field == c.field)
			}
			if !found {
				t.Fatalf("errors %v, want one on %s", err, c.field)
			}
			noSecrets(t, err.Error())
		})
	}
}

// TestAcceptanceSignedWithOAuth2: the sink passes the acceptance suite
// (order per key, held-back keys, cancellation, no goroutine left behind)
// with signing and OAuth2 on, in every mode.
func TestAcceptanceSignedWithOAuth2(t *testing.T) {
	for _, mode := range []string{ModeBinary, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			f := newOAuthFixture(t, 3600)
			conntest.RunSink(t, receiverHarness(f.recv, func(cfg *Config) {
				cfg.URL, cfg.Mode, cfg.OAuth2 = f.url, mode, f.oauth2()
				cfg.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
			}))
		})
	}
}
