package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/telemetry/scrape"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// opsStatus is the part of /status these tests read.
type opsStatus struct {
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready"`
	Sources  map[string]struct {
		Read       uint64            `json:"changes_read"`
		EventsOut  uint64            `json:"events_out"`
		State      string            `json:"state"`
		Connected  *bool             `json:"connected"`
		LagSeconds *float64          `json:"lag_seconds"`
		Position   string            `json:"position"`
		Requests   map[string]uint64 `json:"requests"`
		Buffered   *int64            `json:"buffered"`
	} `json:"sources"`
	Sinks map[string]struct {
		Delivered uint64 `json:"delivered"`
		Failures  uint64 `json:"failures"`
		Reachable bool   `json:"reachable"`
		LastError string `json:"last_error"`
		Latency   struct {
			Count uint64  `json:"count"`
			P99   float64 `json:"p99_ms"`
		} `json:"latency"`
	} `json:"sinks"`
}

func opsGetStatus(t *testing.T, admin string) opsStatus {
	t.Helper()
	code, body := opsGet(t, "http://"+admin+"/status")
	var st opsStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/status = %d %v: %s", code, err, body)
	}
	return st
}

func opsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func opsScrape(t *testing.T, admin string) scrape.Samples {
	t.Helper()
	s, err := scrape.Get(context.Background(), "http://"+admin+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func opsMetric(t *testing.T, s scrape.Samples, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.Value(name, labels...)
	if !ok {
		t.Fatalf("/metrics has no %s%v", name, labels)
	}
	return v
}

// TestOpsMetricsStatusAndLag streams rows from the shared MariaDB and checks
// the metrics, /status, lag on an idle database (heartbeats every second),
// /readyz while the HTTP sink's receiver is down and back, and `ferry health`.
func TestOpsMetricsStatusAndLag(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	recvAddr, admin := freeAddr(t), freeAddr(t)
	r := receiver.New()
	recv := listenOn(t, recvAddr, r)
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: "http://" + recvAddr + "/events", admin: admin,
		extra: "    heartbeat: 1s"}.yaml(t, dir)
	cfg = writeConfig(t, dir, strings.Replace(readFile(t, cfg), "  listen: "+admin, "  listen: "+admin+"\n  max_lag: 30s", 1))
	p := startFerryReady(t, cfg, admin)

	const rows = 20
	for i := range rows {
		exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, 'v%d')", i, i))
	}
	waitEvents(t, r, rows)

	// Counters, latency and the read position, as a scraper sees them.
	file, pos := opsMasterStatus(t)
	eventually(t, 15*time.Second, "the binlog position gauge at the server's position", func() bool {
		s := opsScrape(t, admin)
		got, _ := s.Value("ferry_source_binlog_position", "source", "db")
		file, pos = opsMasterStatus(t)
		return got == float64(pos)
	})
	s := opsScrape(t, admin)
	fileNo, _ := strconv.Atoi(file[strings.LastIndexByte(file, '.')+1:])
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ferry_source_events_read_total", []string{"source", "db"}, rows},
		{"ferry_sink_events_delivered_total", []string{"sink", "recv"}, rows},
		{"ferry_sink_delivery_latency_seconds", []string{"sink", "recv"}, rows}, // sample count
		{"ferry_source_binlog_file_number", []string{"source", "db"}, float64(fileNo)},
		{"ferry_source_connected", []string{"source", "db"}, 1},
		{"ferry_sink_reachable", []string{"sink", "recv"}, 1},
		{"ferry_pipeline_in_flight_events", nil, 0},
		{"ferry_sink_buffer_events", []string{"sink", "recv"}, 0},
	} {
		if got := opsMetric(t, s, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := s.Value("ferry_build_info"); !ok {
		t.Error("no ferry_build_info")
	}
	st := opsGetStatus(t, admin)
	src, sink := st.Sources["db"], st.Sinks["recv"]
	wantPos := fmt.Sprintf("%s:%d", file, pos)
	switch {
	case !st.Ready || src.State != "streaming" || src.Connected == nil || !*src.Connected || src.LagSeconds == nil ||
		(src.Position != wantPos && !strings.HasPrefix(src.Position, wantPos+" gtid=")) || src.Read != rows || src.EventsOut != rows:
		t.Errorf("/status source: ready %v %v, %+v (want position %s)", st.Ready, st.NotReady, src, wantPos)
	case sink.Delivered != rows || !sink.Reachable || sink.Latency.Count != rows || sink.Latency.P99 <= 0:
		t.Errorf("/status sink: %+v", sink)
	}

	// An idle database: heartbeats every second keep the lag small. Without
	// them it would grow by a second each second.
	var maxLag float64
	for range 24 {
		time.Sleep(250 * time.Millisecond)
		lag := opsMetric(t, opsScrape(t, admin), "ferry_source_lag_seconds", "source", "db")
		maxLag = max(maxLag, lag)
	}
	if maxLag >= 3 {
		t.Errorf("lag on an idle database with 1s heartbeats reached %.1fs over 6s", maxLag)
	}

	// The receiver goes away: a change cannot be delivered, /readyz names the
	// sink; `ferry health` without --ready still passes (alive).
	if err := recv.Close(); err != nil {
		t.Fatal(err)
	}
	exec1(t, db, "INSERT INTO t VALUES (100, 'while down')")
	var body string
	eventually(t, 15*time.Second, "/readyz 503 naming the sink", func() bool {
		var code int
		code, body = opsGet(t, "http://"+admin+"/readyz")
		return code == 503 && strings.Contains(body, "sink recv unreachable: ")
	})
	if !strings.HasPrefix(body, "not ready: ") {
		t.Errorf("/readyz body %q", body)
	}
	if code, out, errOut := runFerry(t, 20*time.Second, "health", "-c", cfg, "--ready"); code != 1 || !strings.Contains(errOut, "sink recv unreachable") {
		t.Errorf("ferry health --ready with the sink down = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, out, errOut := runFerry(t, 20*time.Second, "health", "-c", cfg); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("ferry health (liveness) with the sink down = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if st := opsGetStatus(t, admin); st.Sinks["recv"].Reachable || st.Sinks["recv"].Failures == 0 || st.Sinks["recv"].LastError == "" {
		t.Errorf("/status sink while down: %+v", st.Sinks["recv"])
	}

	// It comes back: the change is delivered and readiness returns.
	listenOn(t, recvAddr, r)
	waitEvents(t, r, rows+1)
	eventually(t, 15*time.Second, "/readyz 200 again", func() bool { return httpOK("http://" + admin + "/readyz") })
	if code, out, errOut := runFerry(t, 20*time.Second, "health", "--addr", admin, "--ready"); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("ferry health --addr --ready after recovery = %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	p.stop()
	if code, _, errOut := runFerry(t, 20*time.Second, "health", "--addr", admin); code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("ferry health against a stopped ferry = %d, stderr: %s", code, errOut)
	}
}

// opsMasterStatus returns the server's current binlog file and position.
func opsMasterStatus(t *testing.T) (string, uint64) {
	t.Helper()
	text := binlogPos(t, shared)
	i := strings.LastIndexByte(text, ':')
	pos, err := strconv.ParseUint(text[i+1:], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return text[:i], pos
}

// TestOpsHealthUsage: a configuration whose admin listener is off, or no
// address at all, is a usage error (exit 2), as is a bad max_lag.
func TestOpsHealthUsage(t *testing.T) {
	dir := t.TempDir()
	off := pipelineConfig{server: shared, db: "x", start: "latest", url: "http://127.0.0.1:9/"}.yaml(t, dir)
	if code, _, errOut := runFerry(t, 20*time.Second, "health", "-c", off); code != 2 || !strings.Contains(errOut, "admin listener is off") {
		t.Errorf("ferry health -c (admin off) = %d, stderr: %s", code, errOut)
	}
	if code, _, errOut := runFerry(t, 20*time.Second, "health"); code != 2 || !strings.Contains(errOut, "needs -c CONFIG or --addr") {
		t.Errorf("ferry health = %d, stderr: %s", code, errOut)
	}
	bad := writeConfig(t, t.TempDir(), strings.Replace(readFile(t, off), "  listen: off", "  listen: 127.0.0.1:9\n  max_lag: -5s", 1))
	if code, _, errOut := runFerry(t, 20*time.Second, "validate", "-c", bad); code != 2 || !strings.Contains(errOut, "admin.max_lag: must not be negative") {
		t.Errorf("ferry validate with a negative max_lag = %d, stderr: %s", code, errOut)
	}
}

// TestOpsWebhookRequestsCounted: webhook answers are counted by status code
// and the journal drains to zero once the sink has everything.
func TestOpsWebhookRequestsCounted(t *testing.T) {
	r := receiver.New()
	listen, admin, dir := freeAddr(t), freeAddr(t), t.TempDir()
	cfg := webhookConfig(t, dir, listen, receiver.Start(t, r), "    verify: {scheme: bearer, secret: s3cret}")
	cfg = writeConfig(t, dir, strings.Replace(readFile(t, cfg), "admin: {listen: off}", "admin: {listen: "+admin+"}", 1))
	startFerryReady(t, cfg, admin)
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/hooks/t", strings.NewReader(`{"n":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		if code := post("s3cret"); code != 200 {
			t.Fatalf("authorized post = %d", code)
		}
	}
	if code := post("wrong"); code != 401 {
		t.Fatalf("unauthorized post = %d", code)
	}
	waitEvents(t, r, 3)
	eventually(t, 10*time.Second, "the webhook journal drained", func() bool {
		v, ok := opsScrape(t, admin).Value("ferry_webhook_buffer_records", "source", "hooks")
		return ok && v == 0
	})
	s := opsScrape(t, admin)
	for code, want := range map[string]float64{"200": 3, "401": 1} {
		if got := opsMetric(t, s, "ferry_webhook_requests_total", "source", "hooks", "code", code); got != want {
			t.Errorf("ferry_webhook_requests_total{code=%q} = %v, want %v", code, got, want)
		}
	}
	if got := opsMetric(t, s, "ferry_source_connected", "source", "hooks"); got != 1 {
		t.Errorf("webhook source connected = %v", got)
	}
	if got := opsMetric(t, s, "ferry_sink_delivery_latency_seconds", "sink", "recv"); got != 3 {
		t.Errorf("latency samples = %v, want 3", got)
	}
	st := opsGetStatus(t, admin).Sources["hooks"]
	if st.Requests["200"] != 3 || st.Requests["401"] != 1 || st.Buffered == nil || *st.Buffered != 0 || st.State != "streaming" {
		t.Errorf("/status webhook source: %+v", st)
	}
}

// TestOpsSourceDownAndBack kills the database under a running ferry:
// /readyz names the reconnecting source and ferry_source_connected drops
// to 0 until the server is back.
func TestOpsSourceDownAndBack(t *testing.T) {
	ctx := context.Background()
	srv, start := ownServer(t)
	r := receiver.New()
	admin := freeAddr(t)
	startFerryReady(t, pipelineConfig{server: srv, db: "d", start: start, url: receiver.Start(t, r), admin: admin,
		extra: "    heartbeat: 1s"}.yaml(t, t.TempDir()), admin)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	var body string
	eventually(t, 30*time.Second, "/readyz naming the reconnecting source", func() bool {
		var code int
		code, body = opsGet(t, "http://"+admin+"/readyz")
		return code == 503 && strings.Contains(body, "source db reconnecting")
	})
	if v := opsMetric(t, opsScrape(t, admin), "ferry_source_connected", "source", "db"); v != 0 {
		t.Errorf("ferry_source_connected = %v while the server is down", v)
	}
	if st := opsGetStatus(t, admin).Sources["db"]; st.State != "reconnecting" || st.Connected == nil || *st.Connected {
		t.Errorf("/status source while the server is down: %+v", st)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "/readyz 200 after the server is back", func() bool { return httpOK("http://" + admin + "/readyz") })
	if err := srv.Exec(ctx, "INSERT INTO d.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	waitEvents(t, r, 1)
	if v := opsMetric(t, opsScrape(t, admin), "ferry_source_connected", "source", "db"); v != 1 {
		t.Errorf("ferry_source_connected = %v after the restart", v)
	}
}
