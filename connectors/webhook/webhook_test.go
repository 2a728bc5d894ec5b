package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/state"
)

var paths atomic.Int64

// client keeps no idle connections, so goroutine-leak checks see only the
// source's own goroutines.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

type fixture struct {
	src   *webhook.Source
	url   string
	store *state.Store
}

// start opens a webhook source on a free loopback port with a real store.
func start(t *testing.T, mut func(*webhook.Config)) *fixture {
	t.Helper()
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startOn(t, store, "hooks", mut)
}

func startOn(t *testing.T, store *state.Store, name string, mut func(*webhook.Config)) *fixture {
	t.Helper()
	cfg := webhook.DefaultConfig()
	cfg.Listen, cfg.Path = "127.0.0.1:0", fmt.Sprintf("/hooks/%d", paths.Add(1))
	if mut != nil {
		mut(cfg)
	}
	src, err := webhook.New(name, cfg, app.NewWebhookJournal(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return &fixture{src: src, url: "http://" + src.Addr() + cfg.Path, store: store}
}

func (f *fixture) post(t *testing.T, contentType, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *fixture) read(t *testing.T) ferry.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := f.src.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBodiesBecomeData(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Extensions = map[string]string{"tenant": "X-Tenant"} })
	cases := []struct {
		ct, body, wantType, wantData string
	}{
		{"application/json", `{"order": 42}`, "application/json", `{"order": 42}`},
		{"application/x-www-form-urlencoded", "b=2&a=1&a=3", "application/json", `{"a":["1","3"],"b":"2"}`},
		{"application/xml", `<order id="42" xmlns="urn:x"><line>a</line><line>b</line><note>hi &amp; bye</note><total cur="EUR">9.50</total></order>`,
			"application/json", `{"order":{"@id":"42","line":["a","b"],"note":"hi \u0026 bye","total":{"@cur":"EUR","#text":"9.50"}}}`},
		{"text/plain; charset=utf-8", "hello", "text/plain; charset=utf-8", "hello"},
	}
	for _, c := range cases {
		resp, body := f.post(t, c.ct, c.body, "X-Tenant", "acme", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ids"`) {
			t.Fatalf("%s: %d %s", c.ct, resp.StatusCode, body)
		}
		ch := f.read(t).Changes[0]
		r := ch.Request
		if r.ContentType != c.wantType || string(r.Data) != c.wantData || ch.Op != ferry.OpRequest || ch.ID == "" ||
			r.Extensions["tenant"] != "acme" || r.Extensions["traceparent"] == "" {
			t.Errorf("%s: change %+v data %s", c.ct, r, r.Data)
		}
	}
}

func TestRefusals(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.MaxBodyBytes = 64; c.Accept = []string{"json", "cloudevents"} })
	cases := []struct {
		method, ct, body string
		status           int
		reason           string
	}{
		{"POST", "application/json", `{"a":`, 400, "body is not valid JSON"},
		{"POST", "application/json", strings.Repeat("x", 65), 413, "body exceeds 64 bytes"},
		{"POST", "text/plain", "hi", 415, "text/plain is not accepted here (accepted: json, cloudevents)"},
		{"POST", "", "{}", 415, "missing or invalid Content-Type"},
		{"PUT", "application/json", "{}", 405, "method PUT not allowed"},
		{"POST", "application/cloudevents+json", `{"specversion":"1.0","id":"x"}`, 400, "invalid CloudEvent"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, f.url, strings.NewReader(c.body))
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.reason) {
			t.Errorf("%s %s %q = %d %s, want %d %q", c.method, c.ct, c.body, resp.StatusCode, b, c.status, c.reason)
		}
	}
	if info, _ := app.NewWebhookJournal(f.store).Info(context.Background(), "hooks"); info.Depth != 0 {
		t.Fatalf("refused requests were journaled: %d", info.Depth)
	}
}

func TestVerificationFailureIs401AndNothingStored(t *testing.T) {
	f := start(t, func(c *webhook.Config) {
		c.Verify = webhook.Verify{Scheme: "github", Secret: "It's a Secret to Everybody"}
	})
	resp, body := f.post(t, "text/plain", "Hello, World!", "X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if resp.StatusCode != 200 {
		t.Fatalf("valid signature: %d %s", resp.StatusCode, body)
	}
	resp, body = f.post(t, "text/plain", "Hello, World?", "X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if resp.StatusCode != 401 || !strings.Contains(body, "invalid signature") {
		t.Fatalf("tampered body: %d %s", resp.StatusCode, body)
	}
	if f.src.Stats().Unauthorized.Load() != 1 || f.src.Stats().Accepted.Load() != 1 {
		t.Fatalf("stats: %+v", f.src.Stats())
	}
}

func TestDuplicateDeliveryGetsTheSameAnswer(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.IDHeader = "X-Delivery-Id" })
	r1, b1 := f.post(t, "application/json", `{"n":1}`, "X-Delivery-Id", "del-7")
	r2, b2 := f.post(t, "application/json", `{"n":1}`, "X-Delivery-Id", "del-7")
	if r1.StatusCode != 200 || r2.StatusCode != 200 || b1 != b2 || !strings.Contains(b1, "del-7") || r2.Header.Get("Ferry-Duplicate") != "true" {
		t.Fatalf("first %d %s, retry %d %s %v", r1.StatusCode, b1, r2.StatusCode, b2, r2.Header)
	}
	if n := len(f.read(t).Changes); n != 1 {
		t.Fatalf("%d changes for one delivery", n)
	}
}

func TestDeliveryIDFromBody(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.IDExpression = `body.event_id` })
	f.post(t, "application/json", `{"event_id":"evt-1"}`)
	_, b := f.post(t, "application/json", `{"event_id":"evt-1"}`)
	if !strings.Contains(b, "evt-1") {
		t.Fatalf("answer %s", b)
	}
	if ch := f.read(t).Changes; len(ch) != 1 || ch[0].ID != "evt-1" {
		t.Fatalf("changes %+v", ch)
	}
}

func TestCloudEventsPassThrough(t *testing.T) {
	f := start(t, nil)
	// binary mode
	f.post(t, "application/json", `{"amount":10}`, "ce-specversion", "1.0", "ce-id", "b-1", "ce-source", "/erp", "ce-type", "erp.paid", "ce-tenant", "acme")
	// structured
	f.post(t, "application/cloudevents+json", `{"specversion":"1.0","id":"s-1","source":"/erp","type":"erp.paid","data":{"amount":11}}`)
	// batch
	f.post(t, "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"x-1","source":"/erp","type":"t"},{"specversion":"1.0","id":"x-2","source":"/erp","type":"t"}]`)
	var ids []string
	for len(ids) < 4 {
		for _, c := range f.read(t).Changes {
			if c.Request.Event == nil {
				t.Fatalf("change %s lost its CloudEvent", c.ID)
			}
			ids = append(ids, c.Request.Event.ID())
			if c.ID == "b-1" && (c.Request.Event.Extensions()["tenant"] != "acme" || string(c.Request.Event.Data()) != `{"amount":10}`) {
				t.Fatalf("binary event = %s", c.Request.Event)
			}
		}
	}
	if strings.Join(ids, ",") != "b-1,s-1,x-1,x-2" {
		t.Fatalf("ids = %v", ids)
	}
}

func TestBufferFullAnswers503ThenRecovers(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Buffer.MaxEntries = 2 })
	for range 2 {
		if r, b := f.post(t, "application/json", `{}`); r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, b)
		}
	}
	r, b := f.post(t, "application/json", `{}`)
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "5" || !strings.Contains(b, "buffer full") {
		t.Fatalf("full buffer: %d %s %v", r.StatusCode, b, r.Header)
	}
	batch := f.read(t)
	if err := batch.Ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.post(t, "application/json", `{}`); r.StatusCode != 200 {
		t.Fatalf("after the sinks caught up: %d", r.StatusCode)
	}
}

func TestRateLimitAnswers429(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.RateLimit = webhook.RateLimit{RequestsPerSecond: 1, Burst: 2} })
	codes := map[int]int{}
	var retry string
	for range 5 {
		r, _ := f.post(t, "application/json", `{}`)
		codes[r.StatusCode]++
		if r.StatusCode == 429 {
			retry = r.Header.Get("Retry-After")
		}
	}
	if codes[200] != 2 || codes[429] != 3 || retry != "1" {
		t.Fatalf("codes %v, Retry-After %q", codes, retry)
	}
}

func TestAckDeliveredWaitsForTheSinks(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Ack = "delivered"; c.IDHeader = "X-Id" })
	answered := make(chan int, 1)
	go func() {
		r, _ := f.post(t, "application/json", `{}`, "X-Id", "d1")
		answered <- r.StatusCode
	}()
	batch := f.read(t)
	select {
	case code := <-answered:
		t.Fatalf("answered %d before delivery", code)
	case <-time.After(200 * time.Millisecond):
	}
	if err := batch.Ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if code := <-answered; code != 200 {
		t.Fatalf("answer after delivery: %d", code)
	}
	// A retry of a delivered request is answered at once.
	if r, _ := f.post(t, "application/json", `{}`, "X-Id", "d1"); r.StatusCode != 200 || r.Header.Get("Ferry-Duplicate") != "true" {
		t.Fatalf("retry: %d", r.StatusCode)
	}
}

func TestSourcesShareAListener(t *testing.T) {
	store, _ := state.Open(t.TempDir(), state.Options{})
	defer store.Close()
	a := startOn(t, store, "a", func(c *webhook.Config) { c.Listen, c.Path = "127.0.0.1:0", "/a" })
	b := startOn(t, store, "b", func(c *webhook.Config) { c.Listen, c.Path = "127.0.0.1:0", "/b" })
	if a.src.Addr() != b.src.Addr() {
		t.Fatalf("two listeners: %s %s", a.src.Addr(), b.src.Addr())
	}
	a.post(t, "application/json", `{"to":"a"}`)
	b.post(t, "application/json", `{"to":"b"}`)
	if string(a.read(t).Changes[0].Request.Data) != `{"to":"a"}` || string(b.read(t).Changes[0].Request.Data) != `{"to":"b"}` {
		t.Fatal("routed to the wrong source")
	}
	cfg := webhook.DefaultConfig()
	cfg.Listen, cfg.Path = "127.0.0.1:0", "/a"
	dup, _ := webhook.New("c", cfg, app.NewWebhookJournal(store), nil)
	if err := dup.Open(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("second source on /a: %v", err)
	}
}

func TestAcceptance(t *testing.T) {
	store, _ := state.Open(t.TempDir(), state.Options{})
	defer store.Close()
	producer := startOn(t, store, "suite", nil)
	n := 0
	conntest.RunSource(t, conntest.SourceHarness{
		New: func(t *testing.T) ferry.Source {
			cfg := webhook.DefaultConfig()
			cfg.Listen, cfg.Path = "127.0.0.1:0", fmt.Sprintf("/reader/%d", paths.Add(1))
			s, err := webhook.New("suite", cfg, app.NewWebhookJournal(store), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t *testing.T, count int) {
			for range count {
				n++
				if r, b := producer.post(t, "application/json", fmt.Sprintf(`{"n":%d}`, n)); r.StatusCode != 200 {
					t.Fatalf("%d %s", r.StatusCode, b)
				}
			}
		},
	})
}

func TestRecordsKeepNoCredentials(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Verify = webhook.Verify{Scheme: "bearer", Secret: "tok-secret"} })
	f.post(t, "application/json", `{}`, "Authorization", "Bearer tok-secret", "Cookie", "s=1")
	entries, _ := app.NewWebhookJournal(f.store).Entries(context.Background(), "hooks", 0, 10)
	if len(entries) != 1 || bytes.Contains(entries[0].Record, []byte("tok-secret")) || bytes.Contains(entries[0].Record, []byte("s=1")) {
		t.Fatalf("journal record = %s", entries[0].Record)
	}
}

// TestRecordsKeepNoSignature: the signature header of the scheme is kept
// from the journal like credentials.
func TestRecordsKeepNoSignature(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Verify = webhook.Verify{Scheme: "github", Secret: "gh-secret"} })
	mac := hmac.New(sha256.New, []byte("gh-secret"))
	mac.Write([]byte(`{}`))
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if resp, _ := f.post(t, "application/json", `{}`, "X-Hub-Signature-256", sig); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed request: %d", resp.StatusCode)
	}
	entries, _ := app.NewWebhookJournal(f.store).Entries(context.Background(), "hooks", 0, 10)
	if len(entries) != 1 || bytes.Contains(entries[0].Record, []byte(sig[7:])) {
		t.Fatalf("journal record = %s", entries[0].Record)
	}
}

// TestMappingsRefuseSecretHeaders: extensions and id_header may not copy
// credentials or the signature header, whatever their spelling.
func TestMappingsRefuseSecretHeaders(t *testing.T) {
	for _, c := range []struct {
		scheme, header string
		ext            bool
	}{
		{"none", "Authorization", true}, {"none", "proxy-authorization", true}, {"none", "COOKIE", false},
		{"github", "X-Hub-Signature-256", true}, {"stripe", "stripe-signature", false}, {"hmac-sha256", "X-My-Sig", true},
	} {
		cfg := webhook.DefaultConfig()
		cfg.Path = "/x"
		cfg.Verify = webhook.Verify{Scheme: c.scheme, Secret: "s", Header: "X-My-Sig"}
		field := "id_header"
		if c.ext {
			cfg.Extensions, field = map[string]string{"leak": c.header}, "extensions.leak"
		} else {
			cfg.IDHeader = c.header
		}
		err := cfg.Validate()
		var fe *ferry.FieldError
		if !errors.As(err, &fe) || fe.Field != field || !strings.Contains(err.Error(), "never leave Ferry") {
			t.Errorf("%s mapping %s with scheme %s: %v, want a refusal on %s", field, c.header, c.scheme, err, field)
		}
	}
}

// TestInvalidCloudEventsAreRefused: a passed-through CloudEvent that breaks
// the spec gets 400 with the reason instead of being altered by the parser.
func TestInvalidCloudEventsAreRefused(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Accept = []string{"cloudevents"} })
	cases := []struct{ ct, body, reason string }{
		{"application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"/s","type":"t","data":"a","data_base64":"YQ=="}`,
			"both data and data_base64 are present"},
		{"application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"/s","type":"t","Bad_Ext":"v"}`,
			`attribute name \"Bad_Ext\"`},
		{"application/cloudevents-batch+json", `[{"specversion":"1.0","id":"x","source":"/s","type":"t"},{"specversion":"1.0","id":"y","type":"t"}]`,
			"invalid CloudEvent 1 of the batch: required attribute source is missing"},
	}
	for _, c := range cases {
		resp, body := f.post(t, c.ct, c.body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.reason) {
			t.Errorf("%s %s = %d %s, want 400 %q", c.ct, c.body, resp.StatusCode, body, c.reason)
		}
	}
	resp, body := f.post(t, "application/json", "{}", "ce-specversion", "1.0", "ce-id", "1", "ce-source", "/s", "ce-type", "t", "ce-bad_ext", "v")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Ce-Bad_ext") {
		t.Errorf("binary mode with a bad extension name = %d %s", resp.StatusCode, body)
	}
}

// TestHeaderExtensionsCarryNoControlCharacters: a header value mapped to an
// extension is escaped reversibly (tab, "%" and non-UTF-8 bytes as %XX).
func TestHeaderExtensionsCarryNoControlCharacters(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Extensions = map[string]string{"tenant": "X-Tenant"} })
	resp, body := f.post(t, "application/json", "{}", "X-Tenant", "a\tb 100% caf\xe9")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := f.read(t).Changes[0].Request.Extensions["tenant"]; got != "a%09b 100%25 caf%E9" {
		t.Fatalf("extension tenant = %q", got)
	}
}
