package integration

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func webhookConfig(t *testing.T, dir, listen, recvURL, extra string) string {
	return writeConfig(t, dir, fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: off}
defaults: {type_prefix: com.example, to: [recv]}
sources:
  hooks:
    type: webhook
    listen: %s
    path: /hooks/t
    id_header: X-Delivery-Id
%s
sinks:
  recv:
    type: http
    url: %s
    retry: {initial_backoff: 20ms, max_backoff: 200ms}
`, dir, listen, extra, recvURL))
}

// sender posts numbered webhooks like a legacy system does: each until it
// gets a 2xx, with the same delivery id on every retry.
type sender struct {
	url    string
	client *http.Client
	mu     sync.Mutex
	acked  map[string]bool
}

func newSender(url string) *sender {
	return &sender{url: url, acked: map[string]bool{}, client: &http.Client{Timeout: 5 * time.Second}}
}

// send tries once; true when the request was acknowledged.
func (s *sender) send(id string) bool {
	req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(`{"delivery":"`+id+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Delivery-Id", id)
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return false
	}
	s.mu.Lock()
	s.acked[id] = true
	s.mu.Unlock()
	return true
}

// burst sends ids concurrently, once each, and returns how many were acked.
func (s *sender) burst(ids []string) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	sem := make(chan struct{}, 16)
	for _, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if s.send(id) {
				mu.Lock()
				n++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}

func (s *sender) isAcked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked[id]
}

func (s *sender) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.acked {
		out = append(out, id)
	}
	return out
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// TestWebhookKill9LosesNothingAcknowledged answers batches of requests
// 2xx and kills ferry with SIGKILL right after each batch; after a restart
// every acknowledged request reaches the sink.
func TestWebhookKill9LosesNothingAcknowledged(t *testing.T) {
	r := receiver.New()
	r.SetDelay(5 * time.Millisecond) // keep deliveries behind the acknowledgements
	listen := freeAddr(t)
	cfg := webhookConfig(t, t.TempDir(), listen, receiver.Start(t, r), "")
	s := newSender("http://" + listen + "/hooks/t")
	for round := range 5 {
		p := startFerry(t, cfg)
		eventually(t, 20*time.Second, "the webhook listener", func() bool { return s.send(fmt.Sprintf("warmup-%d", round)) })
		if n := s.burst(ids(fmt.Sprintf("r%d", round), 200)); n != 200 {
			t.Fatalf("round %d: only %d of 200 acknowledged while up", round, n)
		}
		p.kill() // right after the 2xx answers, before most were delivered
		t.Logf("round %d: killed with %d events received of %d acknowledged", round, r.Count(), len(s.ackedIDs()))
	}
	p := startFerry(t, cfg)
	want := s.ackedIDs()
	eventually(t, 60*time.Second, fmt.Sprintf("%d acknowledged requests at the sink", len(want)), func() bool {
		return distinct(r.Events()) >= len(want)
	})
	got := map[string]bool{}
	for _, e := range r.Events() {
		got[e.ID()] = true
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("acknowledged request %s never arrived", id)
		}
	}
	// Delivery ids survive the restarts: a sender's late retries are
	// answered as duplicates and emit nothing new.
	before := r.Count()
	for _, id := range want[:20] {
		req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(`{"delivery":"`+id+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Delivery-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Ferry-Duplicate") != "true" {
			t.Fatalf("retry of %s after restarts: %v %v", id, err, resp)
		}
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond)
	if r.Count() != before {
		t.Fatalf("retries after restart emitted %d new events", r.Count()-before)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestWebhookBufferFullLosesNothing: with the sink down the journal fills,
// the source answers 503 with Retry-After, and once the sink is back every
// request (the refused ones retried) arrives exactly once per id.
func TestWebhookBufferFullLosesNothing(t *testing.T) {
	r := receiver.New()
	r.SetOutage(true)
	listen := freeAddr(t)
	cfg := webhookConfig(t, t.TempDir(), listen, receiver.Start(t, r), "    buffer: {max_entries: 20, retry_after: 1s}")
	p := startFerry(t, cfg)
	s := newSender("http://" + listen + "/hooks/t")
	all := ids("full", 50)
	eventually(t, 20*time.Second, "the listener", func() bool { return s.send(all[0]) })
	refused := 0
	for _, id := range all[1:] {
		if !s.send(id) {
			refused++
		}
	}
	if refused < 25 {
		t.Fatalf("only %d refusals with a 20-entry buffer and the sink down", refused)
	}
	r.SetOutage(false)
	for _, id := range all { // the sender retries what was refused
		eventually(t, 30*time.Second, "request "+id+" accepted", func() bool { return s.isAcked(id) || s.send(id) })
	}
	eventually(t, 30*time.Second, "every request at the sink", func() bool { return distinct(r.Events()) >= len(all) })
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestWebhookLegacyExample runs configs/webhook.yaml: a signed,
// form-encoded legacy call is verified, reshaped by its rule, and delivered;
// a bad signature is refused with 401 and emits nothing.
func TestWebhookLegacyExample(t *testing.T) {
	r := receiver.New()
	listen := freeAddr(t)
	dir := t.TempDir()
	example, _ := os.ReadFile("../configs/webhook.yaml")
	cfg := filepath.Join(dir, "webhook.yaml")
	_ = os.WriteFile(cfg, []byte(strings.Replace(string(example), "state: {dir: ./.ferry}", "state: {dir: "+dir+"}", 1)), 0o600)
	p := startFerryEnv(t, []string{"WEBHOOK_LISTEN=" + listen, "EVENTS_URL=" + receiver.Start(t, r), "CRM_SECRET=shared-secret"}, "run", "-c", cfg)
	body := "contact_id=1007&email=grace%40example.com&event=contact.updated&list=news&list=offers"
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/hooks/crm", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Signature", sig)
		req.Header.Set("X-Delivery-Id", "crm-1")
		req.Header.Set("X-Tenant", "acme")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte("shared-secret"))
	mac.Write([]byte(body))
	good := hex.EncodeToString(mac.Sum(nil))
	eventually(t, 20*time.Second, "the listener", func() bool { return post("00") == http.StatusUnauthorized })
	if code := post(good); code != 200 {
		t.Fatalf("signed request: %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	e := r.Events()[0]
	var data map[string]any
	_ = json.Unmarshal(e.Data(), &data)
	if e.Type() != "com.example.contact.updated" || e.Subject() != "1007" || e.ID() != "crm-1/contact-updated" ||
		data["contact_id"] != float64(1007) || fmt.Sprint(data["lists"]) != "[news offers]" || e.Extensions()["tenant"] != "acme" {
		t.Fatalf("event = %s", e)
	}
	if n := len(r.Events()); n != 1 {
		t.Fatalf("%d events; the 401s must emit nothing", n)
	}
	p.stop()
}
