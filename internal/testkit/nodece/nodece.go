// Package nodece runs the CloudEvents JavaScript SDK (the `cloudevents` npm
// package, installed here by scripts/test.sh) as a receiver Ferry did not
// write: tests hand it the HTTP requests a sink sent and get back the
// events the SDK decoded and validated. It also runs the official Standard
// Webhooks library (`standardwebhooks`) as an independent signature
// verifier.
package nodece

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Request is one captured HTTP request.
type Request struct {
	Headers map[string]string `json:"headers"` // lower-case names
	Body    []byte            `json:"body"`
}

// Capture records a request for Decode.
func Capture(r *http.Request, body []byte) Request {
	h := make(map[string]string, len(r.Header))
	for name, values := range r.Header {
		h[strings.ToLower(name)] = strings.Join(values, ",")
	}
	return Request{Headers: h, Body: body}
}

// Event is what the SDK decoded; Data holds the exact data bytes.
type Event struct {
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject"`
	PartitionKey    string `json:"partitionkey"`
	DataContentType string `json:"datacontenttype"`
	Data            []byte `json:"data_base64"`
}

// dir is this package's directory, where node_modules is installed.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Require skips the test when node or the npm package is missing, except
// in CI (CI set), where it fails: scripts/test.sh installs both.
func Require(t testing.TB) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errMod := os.Stat(filepath.Join(dir(), "node_modules", "cloudevents"))
	if errMod == nil {
		_, errMod = os.Stat(filepath.Join(dir(), "node_modules", "standardwebhooks"))
	}
	if errNode == nil && errMod == nil {
		return
	}
	msg := fmt.Sprintf("node and the cloudevents and standardwebhooks npm packages are needed (node: %v; package: %v): run scripts/test.sh, or npm ci --prefix %s", errNode, errMod, dir())
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Decode passes reqs to the SDK and returns the events, in order.
func Decode(t testing.TB, reqs []Request) []Event {
	t.Helper()
	Require(t)
	in, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir(), "receive.js"))
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the CloudEvents JavaScript SDK refused what the sink sent: %v\n%s", err, stderr.String())
	}
	var events []Event
	if err := json.Unmarshal(out, &events); err != nil {
		t.Fatalf("decode node output: %v\n%s", err, out)
	}
	return events
}

// VerifyStandardWebhooks checks each request's webhook-id,
// webhook-timestamp and webhook-signature headers against secret (a
// whsec_ secret) with the official Standard Webhooks JavaScript library.
// It returns, per request, "" when the library accepted it or the
// library's reason for refusing it.
func VerifyStandardWebhooks(t testing.TB, secret string, reqs []Request) []string {
	t.Helper()
	Require(t)
	in, err := json.Marshal(struct {
		Secret   string    `json:"secret"`
		Requests []Request `json:"requests"`
	}{secret, reqs})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir(), "verify.js"))
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run the Standard Webhooks library: %v\n%s", err, stderr.String())
	}
	var verdicts []string
	if err := json.Unmarshal(out, &verdicts); err != nil {
		t.Fatalf("decode node output: %v\n%s", err, out)
	}
	if len(verdicts) != len(reqs) {
		t.Fatalf("the Standard Webhooks library answered %d verdicts for %d requests", len(verdicts), len(reqs))
	}
	return verdicts
}
