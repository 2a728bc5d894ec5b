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
	var events []Event
	runNode(t, "receive.js", reqs, &events, "the CloudEvents JavaScript SDK refused what the sink sent")
	return events
}

// runNode runs script under node with in as JSON on stdin and decodes its
// JSON output into out; a failing script fails the test with failure.
func runNode(t testing.TB, script string, in, out any, failure string) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(dir(), script))
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", failure, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("decode the output of %s: %v\n%s", script, err, stdout)
	}
}

// VerifyStandardWebhooks checks each request's webhook-id,
// webhook-timestamp and webhook-signature headers against secret (a
// whsec_ secret) with the official Standard Webhooks JavaScript library.
// It returns, per request, "" when the library accepted it or the
// library's reason for refusing it.
func VerifyStandardWebhooks(t testing.TB, secret string, reqs []Request) []string {
	t.Helper()
	Require(t)
	in := struct {
		Secret   string    `json:"secret"`
		Requests []Request `json:"requests"`
	}{secret, reqs}
	var verdicts []string
	runNode(t, "verify.js", in, &verdicts, "run the Standard Webhooks library")
	if len(verdicts) != len(reqs) {
		t.Fatalf("the Standard Webhooks library answered %d verdicts for %d requests", len(verdicts), len(reqs))
	}
	return verdicts
}
