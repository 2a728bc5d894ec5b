package httpsink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// newWhsec returns a fresh Standard Webhooks secret holding n random bytes.
func newWhsec(t *testing.T, n int) string {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(k)
}

// eventIDs returns the CloudEvent ids a captured request carried.
func eventIDs(t *testing.T, mode string, req nodece.Request) []string {
	t.Helper()
	switch mode {
	case ModeBinary:
		return []string{req.Headers["ce-id"]}
	case ModeStructured:
		var e struct{ ID string }
		if err := json.Unmarshal(req.Body, &e); err != nil {
			t.Fatal(err)
		}
		return []string{e.ID}
	}
	var es []struct{ ID string }
	if err := json.Unmarshal(req.Body, &es); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

// expectAccepted fails unless the official library accepted every request.
func expectAccepted(t *testing.T, secret, which string, reqs []nodece.Request) {
	t.Helper()
	for i, v := range nodece.VerifyStandardWebhooks(t, secret, reqs) {
		if v != "" {
			t.Errorf("%s: request %d refused by the Standard Webhooks library: %s", which, i, v)
		}
	}
}

// TestStandardWebhooksVerifiedByOfficialLibrary: in every mode, each
// request is signed with every secret of a rotation, and the official
// Standard Webhooks library accepts it with each secret alone; it refuses
// them under another secret and refuses a tampered body. webhook-id is the
// event id, or for a batch batch_ and a digest of its events.
func TestStandardWebhooksVerifiedByOfficialLibrary(t *testing.T) {
	nodece.Require(t)
	current, previous, other := newWhsec(t, 32), newWhsec(t, 24), newWhsec(t, 32)
	for _, mode := range []string{ModeBinary, ModeStructured, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			u, captured := capture(t, r)
			s, _ := newSink(t, u, func(c *Config) {
				c.Mode, c.Concurrency, c.BatchMaxEvents = mode, 2, 3
				c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(current), Secrets: []ferry.Secret{ferry.Secret(previous)}}
			})
			events := conntest.Events(8, 4)
			if err := s.Write(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			reqs := captured()
			if len(r.Events()) != len(events) {
				t.Fatalf("receiver got %d events, want %d", len(r.Events()), len(events))
			}
			expectAccepted(t, current, "current secret", reqs)
			expectAccepted(t, previous, "previous secret", reqs)
			for i, v := range nodece.VerifyStandardWebhooks(t, other, reqs) {
				if v == "" {
					t.Errorf("request %d accepted under a secret the sink does not have", i)
				}
			}
			for _, req := range reqs {
				if n := len(strings.Fields(req.Headers["webhook-signature"])); n != 2 {
					t.Errorf("webhook-signature %q holds %d signatures, want one per secret", req.Headers["webhook-signature"], n)
				}
				id, ids := req.Headers["webhook-id"], eventIDs(t, mode, req)
				if mode == ModeBatch {
					if !strings.HasPrefix(id, "batch_") || len(id) != len("batch_")+32 {
						t.Errorf("batch webhook-id %q, want batch_ and 32 hex digits", id)
					}
				} else if id != ids[0] {
					t.Errorf("webhook-id %q, want the event id %q", id, ids[0])
				}
			}
			tampered := reqs[0]
			tampered.Body = bytes.Replace(tampered.Body, []byte(`"n":`), []byte(`"n":1`), 1)
			if v := nodece.VerifyStandardWebhooks(t, current, []nodece.Request{tampered}); v[0] == "" {
				t.Fatalf("a tampered body was accepted: %s", tampered.Body)
			}
		})
	}
}

// TestStandardWebhooksRetryKeepsTheIDAndSignsAgain: a retried request
// carries the same webhook-id (so the receiver can deduplicate) with the
// timestamp of the retry and a signature over it; a signature made ten
// minutes ago is refused by the official library, so the timestamp is
// really signed and really checked.
func TestStandardWebhooksRetryKeepsTheIDAndSignsAgain(t *testing.T) {
	nodece.Require(t)
	secret := newWhsec(t, 32)
	for _, mode := range []string{ModeBinary, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			u, captured := capture(t, r)
			s, _ := newSink(t, u, func(c *Config) {
				c.Mode, c.Concurrency = mode, 1
				c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(secret)}
			})
			clock := time.Now().Add(-time.Minute)
			s.signer.now = func() time.Time { return clock }
			events := conntest.Events(1, 1)
			if mode == ModeBatch {
				events = conntest.Events(3, 1)
			}
			r.FailNext(1, http.StatusServiceUnavailable, "")
			err := s.Write(context.Background(), events)
			if err == nil || ferry.IsPermanent(eventErr(t, err, 0)) {
				t.Fatalf("first attempt: %v, want a transient failure", err)
			}
			clock = clock.Add(50 * time.Second)
			if err := s.Write(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			reqs := captured()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			first, retry := reqs[0].Headers, reqs[1].Headers
			if first["webhook-id"] != retry["webhook-id"] || first["webhook-id"] == "" {
				t.Errorf("webhook-id %q then %q: a retry must keep it", first["webhook-id"], retry["webhook-id"])
			}
			t0, _ := strconv.ParseInt(first["webhook-timestamp"], 10, 64)
			t1, _ := strconv.ParseInt(retry["webhook-timestamp"], 10, 64)
			if t1-t0 != 50 || first["webhook-signature"] == retry["webhook-signature"] {
				t.Errorf("retry timestamp %d after %d, signatures %q and %q: want a fresh timestamp and signature",
					t1, t0, first["webhook-signature"], retry["webhook-signature"])
			}
			expectAccepted(t, secret, "both attempts", reqs)

			clock = time.Now().Add(-10 * time.Minute)
			if err := s.Write(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			stale := captured()[2]
			if v := nodece.VerifyStandardWebhooks(t, secret, []nodece.Request{stale}); !strings.Contains(v[0], "too old") {
				t.Fatalf("a request signed ten minutes ago: library said %q, want too old", v[0])
			}
		})
	}
}

// TestSignatureRefusedIsPermanent: with signing on, the endpoint's 401 or
// 403 dead-letters the events with its answer, unless transient_statuses
// lists it; without signing, 401 stays transient as before.
func TestSignatureRefusedIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	sign := SignConfig{Scheme: "hmac-sha256", Secret: "s3cr3t-value", Header: "X-Signature", Encoding: "hex"}
	cases := []struct {
		name      string
		mut       func(*Config)
		permanent bool
	}{
		{"signed", func(c *Config) { c.Sign = sign }, true},
		{"signed, 401 listed transient", func(c *Config) { c.Sign, c.TransientStatuses = sign, []int{401} }, false},
		{"not signed", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, logs := newSink(t, srv.URL, c.mut)
			err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != 401 || se.Body != "invalid signature" {
				t.Fatalf("error %v, want the 401 answer with its body", err)
			}
			if ferry.IsPermanent(err) != c.permanent {
				t.Fatalf("permanent = %v, want %v: %v", ferry.IsPermanent(err), c.permanent, err)
			}
			if strings.Contains(err.Error()+logs.String(), "s3cr3t-value") {
				t.Fatal("the secret leaked into an error or a log line")
			}
		})
	}
}

// hmacRequest is a request the plain-HMAC test endpoint received.
type hmacRequest struct {
	header http.Header
	body   []byte
}

// TestHMACSignatureRecipe recomputes each signature with crypto/hmac from
// the documented recipe (prefix + hex or base64 of HMAC(secret, body), or
// of "<timestamp>.<body>" with timestamp_header) over the exact bytes
// received, binary bodies included.
func TestHMACSignatureRecipe(t *testing.T) {
	var mu sync.Mutex
	var got []hmacRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, hmacRequest{r.Header.Clone(), body})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	cases := []struct {
		name string
		sign SignConfig
		mode string
		hash func() hash.Hash
	}{
		{"hmac default sha256 hex prefix", SignConfig{Scheme: "hmac", Header: "X-Signature", Prefix: "sha256=", Encoding: "hex"}, ModeBinary, sha256.New},
		{"hmac-sha1 base64", SignConfig{Scheme: "hmac-sha1", Header: "X-Hub-Signature", Encoding: "base64"}, ModeStructured, sha1.New},
		{"hmac-sha512 timestamp", SignConfig{Scheme: "hmac-sha512", Header: "X-Sig", Encoding: "hex", TimestampHeader: "X-Timestamp"}, ModeBatch, sha512.New},
		{"hmac algorithm sha512 base64 timestamp", SignConfig{Scheme: "hmac", Algorithm: "sha512", Header: "Signature", Encoding: "base64", Prefix: "v1=", TimestampHeader: "X-Sent-At"}, ModeBinary, sha512.New},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			c.sign.Secret = "raw hmac secret"
			s, _ := newSink(t, srv.URL, func(cfg *Config) { cfg.Mode, cfg.Sign = c.mode, c.sign })
			if err := s.Write(context.Background(), conntest.AwkwardEvents()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) == 0 {
				t.Fatal("no request")
			}
			for _, r := range got {
				payload := r.body
				if c.sign.TimestampHeader != "" {
					ts := r.header.Get(c.sign.TimestampHeader)
					if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
						t.Fatalf("timestamp header %q is not the unix time of sending", ts)
					}
					payload = append([]byte(ts+"."), r.body...)
				}
				m := hmac.New(c.hash, []byte("raw hmac secret"))
				m.Write(payload)
				want := hex.EncodeToString(m.Sum(nil))
				if c.sign.Encoding == "base64" {
					want = base64.StdEncoding.EncodeToString(m.Sum(nil))
				}
				if sig := r.header.Get(c.sign.Header); sig != c.sign.Prefix+want {
					t.Fatalf("%s: %q, want %q", c.sign.Header, sig, c.sign.Prefix+want)
				}
			}
		})
	}
}

// TestSignedBatchIDIsStable: the batch id depends on the events carried,
// in order, and on nothing else.
func TestSignedBatchIDIsStable(t *testing.T) {
	s, _ := newSink(t, "http://127.0.0.1:1/", func(c *Config) {
		c.Mode, c.Sign = ModeBatch, SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(newWhsec(t, 32))}
	})
	events := conntest.Events(4, 4)
	id := s.batchID(events, []int{0, 1, 2})
	if again := s.batchID(conntest.Events(4, 4), []int{0, 1, 2}); again != id {
		t.Fatalf("same events, ids %q and %q", id, again)
	}
	for _, idx := range [][]int{{0, 1}, {1, 0, 2}, {0, 1, 3}} {
		if other := s.batchID(events, idx); other == id {
			t.Fatalf("events %v share the id of [0 1 2]", idx)
		}
	}
}

// TestAwkwardIDsTravelEncoded: an event id with dots, spaces or
// characters outside printable ASCII goes out percent-encoded in
// webhook-id (as the HTTP binding writes ce-id, and '.' as the Standard
// Webhooks spec asks), and the official library verifies it.
func TestAwkwardIDsTravelEncoded(t *testing.T) {
	nodece.Require(t)
	secret := newWhsec(t, 32)
	r := receiver.New()
	u, captured := capture(t, r)
	s, _ := newSink(t, u, func(c *Config) {
		c.Mode, c.Concurrency = ModeStructured, 1
		c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(secret)}
	})
	ids := map[string]string{
		"0-1-1043#3/orders":                  "0-1-1043#3/orders",
		"snapshot/bin.000003:4/db.t/émoji 🚀": "snapshot/bin%2E000003:4/db%2Et/%C3%A9moji%20%F0%9F%9A%80",
		"100% \"quoted\"\x7f":                "100%25%20%22quoted%22%7F",
	}
	var events []*event.Event
	for id := range ids {
		e := event.New()
		e.SetID(id)
		e.SetSource("/s")
		e.SetType("t")
		_ = e.SetData(event.ApplicationJSON, json.RawMessage(`{"a":1}`))
		events = append(events, &e)
	}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	reqs := captured()
	for _, req := range reqs {
		id := eventIDs(t, ModeStructured, req)[0]
		if got := req.Headers["webhook-id"]; got != ids[id] {
			t.Errorf("event id %q: webhook-id %q, want %q", id, got, ids[id])
		}
	}
	expectAccepted(t, secret, "awkward ids", reqs)
}

// TestSignConfigErrors: every bad sign block is refused with the key and
// the reason, and no error ever quotes a secret.
func TestSignConfigErrors(t *testing.T) {
	const secret = "whsec_c2VjcmV0LXRvby1zaG9ydA=="        // 16 bytes: too short
	const notBase64 = "whsec_not*base64*at-all-zzzzzzzzzz" // not base64
	valid := newWhsec(t, 32)
	cases := []struct {
		name  string
		mut   func(*Config)
		field string
		want  string
	}{
		{"no secret", func(c *Config) { c.Sign.Scheme = SchemeStandardWebhooks }, "sign.secret", "required"},
		{"no whsec_ prefix", func(c *Config) { c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: "c2VjcmV0"} }, "sign.secret", "whsec_"},
		{"not base64", func(c *Config) { c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: notBase64} }, "sign.secret", "base64"},
		{"short key", func(c *Config) { c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: secret} }, "sign.secret", "16-byte"},
		{"bad rotation secret", func(c *Config) {
			c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(valid), Secrets: []ferry.Secret{notBase64}}
		}, "sign.secrets[0]", "base64"},
		{"hmac key on standard", func(c *Config) {
			c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(valid), Header: "X-Sig"}
		}, "sign.header", "hmac"},
		{"hmac without header", func(c *Config) { c.Sign = SignConfig{Scheme: "hmac", Secret: "k"} }, "sign.header", "X-Signature"},
		{"hmac with secrets", func(c *Config) {
			c.Sign = SignConfig{Scheme: "hmac", Secret: "k", Header: "X-Sig", Secrets: []ferry.Secret{"k2"}}
		}, "sign.secrets", "standard-webhooks only"},
		{"algorithm conflict", func(c *Config) {
			c.Sign = SignConfig{Scheme: "hmac-sha1", Secret: "k", Header: "X-Sig", Algorithm: "sha512"}
		}, "sign.algorithm", "hmac-sha1"},
		{"reserved signature header", func(c *Config) { c.Sign = SignConfig{Scheme: "hmac", Secret: "k", Header: "Content-Type"} }, "sign.header", "managed"},
		{"bad timestamp header", func(c *Config) {
			c.Sign = SignConfig{Scheme: "hmac", Secret: "k", Header: "X-Sig", TimestampHeader: "X Time"}
		}, "sign.timestamp_header", "not a valid header name"},
		{"configured header set by sign", func(c *Config) {
			c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(valid)}
			c.Headers = map[string]ferry.Secret{"Webhook-Signature": "x"}
		}, "headers.Webhook-Signature", "set by sign"},
		{"unknown scheme", func(c *Config) { c.Sign.Scheme = "github" }, "sign.scheme", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = "https://erp.internal/hooks"
			c.mut(cfg)
			err := ferry.CheckConfig(cfg)
			var fe *ferry.FieldError
			found := false
			for _, e := range leaves(err) {
				if errors.As(e, &fe) && fe.Field == c.field && strings.Contains(e.Error(), c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("errors %v, want one on %s saying %q", err, c.field, c.want)
			}
			for _, s := range []string{secret, notBase64, valid, strings.TrimPrefix(valid, "whsec_")} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("an error quotes a secret: %v", err)
				}
			}
			if _, err := New("erp", cfg, nil); err == nil {
				t.Fatal("New accepted the configuration")
			}
		})
	}
}

// leaves flattens errors.Join trees.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
