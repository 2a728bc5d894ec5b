package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// signedReceiver captures every raw request for the Standard Webhooks
// library, answers the first failFirst with 503 (so that the sink retries
// and signs again), and hands the rest to a CloudEvents receiver.
type signedReceiver struct {
	mu        sync.Mutex
	reqs      []nodece.Request
	failFirst int
	recv      *receiver.Receiver
}

func (s *signedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, nodece.Capture(r, body))
	fail := len(s.reqs) <= s.failFirst
	s.mu.Unlock()
	if fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.recv.ServeHTTP(w, r)
}

func (s *signedReceiver) captured() []nodece.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]nodece.Request(nil), s.reqs...)
}

func newWhsec(t *testing.T) string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(k)
}

// TestOutboundWebhooksSignedWithStandardWebhooks: row changes go from
// MariaDB through a ferry binary to an HTTP sink with `sign:
// standard-webhooks` and a rotation secret, both from the environment.
// Every request, the refused first attempts and their retries included, is
// accepted by the official Standard Webhooks library under each secret;
// every event arrives; a retry carries the webhook-id of its first attempt.
func TestOutboundWebhooksSignedWithStandardWebhooks(t *testing.T) {
	nodece.Require(t)
	for _, mode := range []string{"binary", "batch"} {
		t.Run(mode, func(t *testing.T) {
			name, db, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(40))")
			current, previous := newWhsec(t), newWhsec(t)
			sr := &signedReceiver{failFirst: 3, recv: receiver.New()}
			srv := httptest.NewServer(sr)
			t.Cleanup(srv.Close)
			cfg := pipelineConfig{server: shared, db: name, start: start, url: srv.URL + "/hooks", mode: mode,
				sinks: "    sign: {scheme: standard-webhooks, secret: \"${ERP_WHSEC}\", secrets: [\"${ERP_WHSEC_OLD}\"]}\n" +
					"    batch_max_events: 7\n"}.yaml(t, t.TempDir())
			p := startFerry(t, cfg, "ERP_WHSEC="+current, "ERP_WHSEC_OLD="+previous)
			const rows = 40
			for i := range rows {
				exec1(t, db, fmt.Sprintf("INSERT INTO orders VALUES (%d, %d.50, 'note %d \"é\"')", i, i, i))
			}
			eventually(t, 60*time.Second, "every row change delivered", func() bool { return distinct(sr.recv.Events()) == rows })
			if code := p.stop(); code != 0 {
				t.Fatalf("ferry exited %d", code)
			}
			reqs := sr.captured()
			for _, secret := range []string{current, previous} {
				for i, v := range nodece.VerifyStandardWebhooks(t, secret, reqs) {
					if v != "" {
						t.Fatalf("request %d of %d refused by the Standard Webhooks library: %s", i, len(reqs), v)
					}
				}
			}
			checkRetriedIDs(t, mode, reqs, sr.failFirst)
			if strings.Contains(p.stderr.String(), strings.TrimPrefix(current, "whsec_")) {
				t.Fatal("the signing secret is in ferry's log")
			}
			t.Logf("%d requests verified, %d refused first attempts retried", len(reqs), sr.failFirst)
		})
	}
}

// checkRetriedIDs: in binary mode every webhook-id is the event id and
// each refused attempt's reappears in a later request. (A batch's id is a
// digest of the events it carries: a retry that groups them otherwise is
// another message, so batch receivers deduplicate by event id.)
func checkRetriedIDs(t *testing.T, mode string, reqs []nodece.Request, refused int) {
	t.Helper()
	later := map[string]bool{}
	for _, r := range reqs[refused:] {
		later[r.Headers["webhook-id"]] = true
		switch id := r.Headers["webhook-id"]; {
		case mode == "binary" && id != r.Headers["ce-id"]:
			t.Fatalf("webhook-id %q, want the event id %q", id, r.Headers["ce-id"])
		case mode == "batch" && !strings.HasPrefix(id, "batch_"):
			t.Fatalf("batch webhook-id %q, want batch_...", id)
		}
	}
	if mode != "binary" {
		return
	}
	for i, r := range reqs[:refused] {
		if !later[r.Headers["webhook-id"]] {
			t.Errorf("refused attempt %d (webhook-id %q) was not retried under the same id", i, r.Headers["webhook-id"])
		}
	}
}
