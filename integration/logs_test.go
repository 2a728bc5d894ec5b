package integration

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// Every kind of secret Ferry can be configured with, each given through
// the environment, as operators do.
var logSecrets = map[string]string{
	"DB_PASSWORD":    "Db-Pa55-logs-q7w8",
	"HOOK_SECRET":    "hook-hmac-k3y-z9x8",
	"API_TOKEN":      "api-t0ken-m5n6",
	"KAFKA_PASSWORD": "kafka-sasl-p4ss-b2c3",
	"KAFKA_WRONG":    "kafka-wr0ng-p4ss-d4e5",
	"AWS_SECRET":     "aws-s3cret-acc3ss-f6g7",
	"OTLP_TOKEN":     "otlp-t0ken-h8i9",
}

func secretEnv() []string {
	var env []string
	for k, v := range logSecrets {
		env = append(env, k+"="+v)
	}
	return env
}

// TestLogsKeepSecretsAndNameTheirComponent runs Ferry at debug level, in
// text and JSON, with every kind of secret configured and through error
// paths (a rejecting endpoint, an unreachable one, a Kafka sink with a wrong
// SASL password, a throttling EventBridge, an unreachable OTLP collector, a
// bad webhook signature, then a MySQL source with a wrong password): no
// secret is ever printed, and every JSON warn or error line names its
// source or sink (or, for process-wide concerns, its component).
func TestLogsKeepSecretsAndNameTheirComponent(t *testing.T) {
	ctx := context.Background()
	if err := shared.CreateUser(ctx, "ferry_logs", logSecrets["DB_PASSWORD"], "REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.*"); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			out := fullRunLogs(t, format)
			out += badPasswordLogs(t, format)
			for name, secret := range logSecrets {
				if strings.Contains(out, secret) {
					t.Fatalf("%s printed:\n%s", name, out)
				}
			}
			if format == "json" {
				checkJSONLines(t, out)
			}
		})
	}
}

func fullRunLogs(t *testing.T, format string) string {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)")
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "ferry", logSecrets["KAFKA_PASSWORD"]))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	eb := ebfake.New()
	eb.ThrottleNext(3)
	ebSrv := httptest.NewServer(eb)
	defer ebSrv.Close()
	r := receiver.New()
	r.FailNext(1, http.StatusUnauthorized, "") // dead-lettered after a logged rejection
	listen := freeAddr(t)
	dir := t.TempDir()
	retry := "retry: {initial_backoff: 10ms, max_backoff: 50ms, max_attempts: 3}"
	cfg := writeConfig(t, dir, fmt.Sprintf(`state: {dir: %[1]s/state}
admin: {listen: off}
pipeline: {shutdown_timeout: 2s}
tracing:
  otlp_endpoint: http://127.0.0.1:1
  headers: {Authorization: "Bearer ${OTLP_TOKEN}"}
defaults: {to: [recv, bus, badbus, eb, down]}
sources:
  db:
    type: mysql
    addr: %[2]s
    user: ferry_logs
    password: ${DB_PASSWORD}
    server_id: %[3]d
    include: ["%[4]s.*"]
    start: %[5]s
  hooks:
    type: webhook
    listen: "%[6]s"
    path: /hook
    verify: {scheme: hmac-sha256, header: X-Signature, secret: "${HOOK_SECRET}"}
sinks:
  recv:
    type: http
    url: %[7]s
    headers: {Authorization: "Bearer ${API_TOKEN}"}
    %[10]s
  down:
    type: http
    url: http://127.0.0.1:1/events
    headers: {X-Api-Key: "${API_TOKEN}"}
    %[10]s
  bus:
    type: kafka
    brokers: ["%[8]s"]
    topic: events
    sasl: {mechanism: SCRAM-SHA-256, username: ferry, password: "${KAFKA_PASSWORD}"}
  badbus:
    type: kafka
    brokers: ["%[8]s"]
    topic: events
    timeout: 2s
    sasl: {mechanism: SCRAM-SHA-256, username: ferry, password: "${KAFKA_WRONG}"}
    %[10]s
  eb:
    type: eventbridge
    region: us-east-1
    event_bus: events
    endpoint: %[9]s
    access_key_id: AKIDLOGS
    secret_access_key: ${AWS_SECRET}
    retry: {initial_backoff: 10ms, max_backoff: 50ms}
`, dir, shared.Addr, nextServerID(), name, start, listen, receiver.Start(t, r), kc.ListenAddrs()[0], ebSrv.URL, retry))
	p := startFerryEnv(t, secretEnv(), "run", "-c", cfg, "--log-format", format)
	exec1(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	post := func(sig string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/hook", strings.NewReader(`{"a":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature", sig)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 20*time.Second, "the webhook listener refusing a bad signature", func() bool { return post("00") == http.StatusUnauthorized })
	mac := hmac.New(sha256.New, []byte(logSecrets["HOOK_SECRET"]))
	mac.Write([]byte(`{"a":1}`))
	if code := post(hex.EncodeToString(mac.Sum(nil))); code != http.StatusOK {
		t.Fatalf("signed request: %d", code)
	}
	eventually(t, 30*time.Second, "deliveries and the error paths", func() bool {
		logs := p.stderr.String()
		return r.Count() >= 2 && len(eb.Accepted()) >= 3 && strings.Contains(logs, "dead-lettered") &&
			(strings.Contains(logs, "sink=badbus") || strings.Contains(logs, `"sink":"badbus"`))
	})
	p.stop()
	if got := r.Requests(); len(got) == 0 || got[0].Header.Get("Authorization") != "Bearer "+logSecrets["API_TOKEN"] {
		t.Fatal("the header secret did not reach the endpoint")
	}
	return p.stderr.String() + p.stdout.String()
}

// badPasswordLogs runs a MySQL source with a wrong password: Ferry stops
// with an authentication error that names the source and not the password.
func badPasswordLogs(t *testing.T, format string) string {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: off}
sources:
  db: {type: mysql, addr: %s, user: ferry_logs, password: "${KAFKA_WRONG}", server_id: %d}
sinks:
  out: {type: stdout}
`, dir, shared.Addr, nextServerID()))
	p := startFerryEnv(t, secretEnv(), "run", "-c", cfg, "--log-format", format)
	if code := p.wait(60 * time.Second); code != 1 {
		t.Fatalf("exit code %d with a wrong password", code)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, "Access denied") || !(strings.Contains(logs, "source=db") || strings.Contains(logs, `"source":"db"`)) {
		t.Fatalf("want an access-denied error naming the source:\n%s", logs)
	}
	return logs + p.stdout.String()
}

// checkJSONLines parses every line Ferry wrote as JSON; warn and error
// lines must name a source, a sink or a component.
func checkJSONLines(t *testing.T, out string) {
	t.Helper()
	warnOrError := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			continue // stdout sink events share the output; they are checked for secrets only
		}
		level, _ := rec["level"].(string)
		if level != "WARN" && level != "ERROR" {
			continue
		}
		warnOrError++
		if rec["source"] == nil && rec["sink"] == nil && rec["component"] == nil {
			t.Errorf("%s line names no source, sink or component: %s", level, line)
		}
	}
	if warnOrError < 5 {
		t.Fatalf("only %d warn/error lines: the error paths did not run:\n%s", warnOrError, out)
	}
}
