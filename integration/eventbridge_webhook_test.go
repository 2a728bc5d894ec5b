package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// ebEnvelope is an EventBridge event as an API destination POSTs it (the
// envelope of the EventBridge user guide's "Amazon EventBridge events").
type ebEnvelope struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Account    string         `json:"account"`
	Time       string         `json:"time"`
	Region     string         `json:"region"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

func randomEnvelope(rng *rand.Rand) ebEnvelope {
	kinds := []struct{ source, detailType string }{
		{"aws.ec2", "EC2 Instance State-change Notification"},
		{"aws.s3", "Object Created"},
		{"com.example.orders", "Order Placed"},
	}
	k := kinds[rng.IntN(len(kinds))]
	return ebEnvelope{Version: "0", ID: uuid.NewString(), DetailType: k.detailType, Source: k.source,
		Account: fmt.Sprintf("%012d", rng.Int64N(1e12)), Region: []string{"us-east-1", "eu-west-1"}[rng.IntN(2)],
		Time:      time.Unix(1.7e9+rng.Int64N(1e8), 0).UTC().Format(time.RFC3339),
		Resources: []string{fmt.Sprintf("arn:aws:ec2:us-east-1:123456789012:instance/i-%016x", rng.Uint64())},
		Detail:    map[string]any{"state": []string{"running", "stopped", "terminated"}[rng.IntN(3)], "n": float64(rng.IntN(1000))}}
}

// postLikeEventBridge sends env with the headers API destinations send
// (User-Agent Amazon/EventBridge/ApiDestinations, JSON with charset,
// Range, Accept-Encoding, Connection: close) and the connection's
// authorization header.
func postLikeEventBridge(t *testing.T, url string, env ebEnvelope, authName, authValue string) *http.Response {
	t.Helper()
	body, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Amazon/EventBridge/ApiDestinations")
	req.Header.Set("Range", "bytes=0-1048575")
	req.Header.Set("Accept-Encoding", "gzip,deflate")
	req.Close = true
	if authName != "" {
		req.Header.Set(authName, authValue)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req) // EventBridge's own limit
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	resp.Body.Close()
	return resp
}

// TestEventBridgeAPIDestinationToLegacy runs the shipped
// configs/eventbridge.yaml (its state directory and, for BASIC, its verify
// block overridden) and POSTs envelopes as an API destination does: each
// becomes one CloudEvent whose id, source, type and time are the
// envelope's, with the detail as data; a wrong or missing key is refused;
// EventBridge's retry of an event is answered as a duplicate, not sent
// twice.
func TestEventBridgeAPIDestinationToLegacy(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, auth := range []struct {
		name, verify, header, value, wrong string
	}{
		{"API_KEY", "", "X-Api-Key", "k-" + uuid.NewString(), "k-wrong"},
		{"BASIC", `{scheme: basic, username: eventbridge, secret: pw-basic}`, "Authorization",
			"Basic " + base64.StdEncoding.EncodeToString([]byte("eventbridge:pw-basic")),
			"Basic " + base64.StdEncoding.EncodeToString([]byte("eventbridge:nope"))},
	} {
		t.Run(auth.name, func(t *testing.T) {
			recv := receiver.New()
			recvURL := recv.Start(t)
			dir, listen := t.TempDir(), freeAddr(t)
			override := fmt.Sprintf("state: {dir: %s/state}\nadmin: {listen: off}\n", dir)
			if auth.verify != "" {
				override += "sources:\n  eventbridge:\n    verify: " + auth.verify + "\n"
			}
			extra := filepath.Join(dir, "override.yaml")
			if err := os.WriteFile(extra, []byte(override), 0o600); err != nil {
				t.Fatal(err)
			}
			p := startFerryEnv(t, []string{"WEBHOOK_LISTEN=" + listen, "EVENTBRIDGE_API_KEY=" + auth.value, "LEGACY_URL=" + recvURL},
				"run", "-c", "../configs/eventbridge.yaml", "-c", extra)
			url := "http://" + listen + "/hooks/eventbridge"
			eventually(t, 30*time.Second, "the webhook listener", func() bool {
				resp, err := http.Get("http://" + listen + "/")
				if err == nil {
					resp.Body.Close()
				}
				return err == nil
			})

			first := randomEnvelope(rng)
			for _, bad := range [][2]string{{auth.header, auth.wrong}, {"", ""}} {
				if resp := postLikeEventBridge(t, url, first, bad[0], bad[1]); resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("POST with authorization %q = %d, want 401", bad[1], resp.StatusCode)
				}
			}
			sent := map[string]ebEnvelope{}
			n := 5 + rng.IntN(20)
			for i := range n {
				env := first
				if i > 0 {
					env = randomEnvelope(rng)
				}
				if resp := postLikeEventBridge(t, url, env, auth.header, auth.value); resp.StatusCode/100 != 2 {
					t.Fatalf("POST %s = %d", env.ID, resp.StatusCode)
				}
				sent[env.ID] = env
			}
			// EventBridge retries an event it got no 2xx for in 5s: same id.
			if resp := postLikeEventBridge(t, url, first, auth.header, auth.value); resp.StatusCode/100 != 2 || resp.Header.Get("Ferry-Duplicate") != "true" {
				t.Fatalf("retried POST = %d duplicate=%q", resp.StatusCode, resp.Header.Get("Ferry-Duplicate"))
			}
			waitEvents(t, recv, n)
			if p.stop() != 0 {
				t.Fatalf("ferry failed:\n%s", tailLines(p.stderr.String(), 10))
			}
			events := recv.Events()
			if len(events) != n {
				t.Fatalf("%d events for %d envelopes", len(events), n)
			}
			for _, e := range events {
				env, ok := sent[e.ID()]
				if !ok {
					t.Fatalf("event id %q is no envelope's id", e.ID())
				}
				var data map[string]any
				if err := json.Unmarshal(e.Data(), &data); err != nil {
					t.Fatal(err)
				}
				if e.Source() != env.Source || e.Type() != env.DetailType || e.Time().UTC().Format(time.RFC3339) != env.Time ||
					!reflect.DeepEqual(data, env.Detail) || e.Extensions()["account"] != env.Account || e.Extensions()["region"] != env.Region {
					t.Fatalf("envelope %+v became %v", env, e)
				}
				if err := e.Validate(); err != nil {
					t.Fatalf("event %s: %v", e.ID(), err)
				}
			}
		})
	}
}
