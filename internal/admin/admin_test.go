package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
	"github.com/ferry-cdc/ferry/internal/telemetry/scrape"
	"github.com/ferry-cdc/ferry/transform"
)

// statusSource sends one change, then waits; its status is settable.
type statusSource struct {
	mu     sync.Mutex
	status ferry.SourceStatus
	sent   bool
}

func (s *statusSource) Open(context.Context, ferry.Position) error { return nil }
func (s *statusSource) Close(context.Context) error                { return nil }

func (s *statusSource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.sent {
		<-ctx.Done()
		return ferry.Batch{}, ctx.Err()
	}
	s.sent = true
	c := ferry.Change{ID: "1", Op: ferry.OpCreate, Source: "db", DB: "shop", Table: "orders", Time: time.Now(),
		After: ferry.Row{Columns: []string{"id"}, Values: []any{int64(1)}}}
	return ferry.Batch{Changes: []ferry.Change{c}, Checkpoint: ferry.Position("1")}, nil
}

func (s *statusSource) Status() ferry.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *statusSource) set(st ferry.SourceStatus) {
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
}

// flakySink fails every Write with err while it is set.
type flakySink struct {
	mu  sync.Mutex
	err error
}

func (s *flakySink) Open(context.Context) error  { return nil }
func (s *flakySink) Close(context.Context) error { return nil }
func (s *flakySink) Write(context.Context, []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *flakySink) set(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

type fixture struct {
	addr string
	src  *statusSource
	sink *flakySink
}

// start runs a pipeline (source db -> sink bus) and the admin listener on
// a free loopback port, until the test ends.
func start(t *testing.T, maxLag time.Duration) *fixture {
	t.Helper()
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eng, err := transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"bus"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{src: &statusSource{}, sink: &flakySink{}}
	f.src.set(ferry.SourceStatus{State: ferry.StateStreaming, Connected: true, Position: "mysql-bin.000003:1234",
		BinlogFile: "mysql-bin.000003", BinlogPos: 1234, Lag: 300 * time.Millisecond})
	f.sink.set(errors.New("dial tcp 127.0.0.1:9: connection refused"))
	rt, err := pipeline.New(pipeline.Config{Engine: eng, Store: store, CheckpointInterval: 10 * time.Millisecond,
		Sources: []pipeline.SourceSpec{{Name: "db", Source: f.src}},
		Sinks: []pipeline.SinkSpec{{Name: "bus", Sink: f.sink,
			Retry: pipeline.RetryPolicy{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}}}})
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.New("test")
	m.Bind(telemetry.View{Stats: rt.Stats(), Sources: map[string]ferry.Source{"db": f.src}})
	srv, err := Listen(Options{Addr: "127.0.0.1:0", Metrics: m, MaxLag: maxLag})
	if err != nil {
		t.Fatal(err)
	}
	f.addr = srv.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	go func() { ran <- rt.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
		<-ran
	})
	return f
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + f.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) waitReady(t *testing.T, want int, contains string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := f.get(t, "/readyz")
		if code == want && strings.Contains(body, contains) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %q, want %d containing %q", code, body, want, contains)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadiness(t *testing.T) {
	f := start(t, time.Second)
	if code, body := f.get(t, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	// The sink refuses connections: not ready, naming it and why.
	f.waitReady(t, 503, "not ready: sink bus unreachable: dial tcp 127.0.0.1:9: connection refused")
	f.sink.set(nil)
	f.waitReady(t, 200, "ready")

	f.src.set(ferry.SourceStatus{State: ferry.StateReconnecting, Lag: 5 * time.Second})
	if body := f.waitReady(t, 503, "source db reconnecting"); strings.Contains(body, "lag") {
		t.Errorf("a disconnected source's lag is reported too: %q", body)
	}
	f.src.set(ferry.SourceStatus{State: ferry.StateStreaming, Connected: true, Lag: 42 * time.Second})
	f.waitReady(t, 503, "not ready: source db lag 42s > 1s")
	f.src.set(ferry.SourceStatus{State: ferry.StateStreaming, Connected: true, Lag: 900 * time.Millisecond})
	f.waitReady(t, 200, "ready")
	if code, _ := f.get(t, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
}

func TestReadinessWithoutMaxLag(t *testing.T) {
	f := start(t, 0)
	f.sink.set(nil)
	f.src.set(ferry.SourceStatus{State: ferry.StateStreaming, Connected: true, Lag: time.Hour})
	f.waitReady(t, 200, "ready")
}

func TestStatusAndMetrics(t *testing.T) {
	f := start(t, time.Minute)
	f.waitReady(t, 503, "sink bus unreachable")
	var doc struct {
		Running  bool     `json:"running"`
		Ready    bool     `json:"ready"`
		NotReady []string `json:"not_ready"`
		InFlight int64    `json:"in_flight"`
		Sources  map[string]struct {
			Read       uint64   `json:"changes_read"`
			EventsIn   uint64   `json:"events_in"`
			EventsOut  uint64   `json:"events_out"`
			State      string   `json:"state"`
			Connected  *bool    `json:"connected"`
			LagSeconds *float64 `json:"lag_seconds"`
			Position   string   `json:"position"`
			Checkpoint string   `json:"checkpoint"`
		} `json:"sources"`
		Sinks map[string]struct {
			Delivered uint64 `json:"delivered"`
			Retries   uint64 `json:"retries"`
			Failures  uint64 `json:"failures"`
			Dead      uint64 `json:"dead_lettered"`
			Buffered  int64  `json:"buffered"`
			Reachable bool   `json:"reachable"`
			LastError string `json:"last_error"`
			Latency   struct {
				Count uint64  `json:"count"`
				P50   float64 `json:"p50_ms"`
				P99   float64 `json:"p99_ms"`
			} `json:"latency"`
		} `json:"sinks"`
	}
	status := func() {
		t.Helper()
		code, body := f.get(t, "/status")
		if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil {
			t.Fatalf("/status = %d %v: %s", code, err, body)
		}
	}
	status()
	db, bus := doc.Sources["db"], doc.Sinks["bus"]
	switch {
	case !doc.Running || doc.Ready || len(doc.NotReady) != 1 || doc.InFlight != 1:
		t.Errorf("/status top level: %+v", doc)
	case db.Read != 1 || db.EventsIn != 1 || db.EventsOut != 0 || db.State != "streaming" || db.Connected == nil || !*db.Connected ||
		db.LagSeconds == nil || *db.LagSeconds != 0.3 || db.Position != "mysql-bin.000003:1234":
		t.Errorf("/status source: %+v", db)
	case bus.Delivered != 0 || bus.Retries == 0 || bus.Failures == 0 || bus.Buffered != 1 || bus.Reachable ||
		!strings.Contains(bus.LastError, "connection refused"):
		t.Errorf("/status sink while down: %+v", bus)
	}

	f.sink.set(nil)
	f.waitReady(t, 200, "ready")
	deadline := time.Now().Add(10 * time.Second)
	for status(); doc.Sources["db"].Checkpoint == "" && time.Now().Before(deadline); status() {
		time.Sleep(10 * time.Millisecond)
	}
	db, bus = doc.Sources["db"], doc.Sinks["bus"]
	switch {
	case !doc.Ready || doc.InFlight != 0 || db.EventsOut != 1 || db.Checkpoint != "1":
		t.Errorf("/status after recovery: %+v", doc)
	case bus.Delivered != 1 || bus.Buffered != 0 || !bus.Reachable || bus.LastError == "" || bus.Latency.Count != 1 ||
		bus.Latency.P50 <= 0 || bus.Latency.P99 < bus.Latency.P50:
		t.Errorf("/status sink after recovery: %+v", bus)
	}

	s, err := scrape.Get(context.Background(), "http://"+f.addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ferry_build_info", []string{"version", "test"}, 1},
		{"ferry_sink_events_delivered_total", []string{"sink", "bus"}, 1},
		{"ferry_sink_delivery_latency_seconds", []string{"sink", "bus"}, 1},
		{"ferry_source_binlog_position", []string{"source", "db"}, 1234},
	} {
		if got, ok := s.Value(c.name, c.labels...); !ok || got != c.want {
			t.Errorf("/metrics %s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

func TestNotRunning(t *testing.T) {
	m := telemetry.New("test")
	srv, err := Listen(Options{Addr: "127.0.0.1:0", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	f := &fixture{addr: srv.Addr()}
	if code, body := f.get(t, "/readyz"); code != 503 || !strings.Contains(body, "not all open") {
		t.Errorf("/readyz before the pipeline runs = %d %q", code, body)
	}
	if code, _ := f.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if _, err := Listen(Options{Addr: "127.0.0.1:0"}); err == nil {
		t.Error("Listen without metrics succeeded")
	}
}

// TestReadyzShowsDeadLetters: a sink that dead-letters is not ready for a
// while, and /status names why, although the stream goes on.
func TestReadyzShowsDeadLetters(t *testing.T) {
	f := start(t, 0)
	f.sink.set(ferry.Permanent(errors.New("400 bad request: no such field")))
	f.waitReady(t, 503, "sink bus dead-lettered events")
	_, body := f.get(t, "/status")
	if !strings.Contains(body, `"last_dead_letter_error": "permanent: 400 bad request: no such field"`) {
		t.Fatalf("/status does not name the dead letter: %s", body)
	}
}

// TestStatusShowsHeldKeys: while an event keeps failing, /status counts its
// key as failing and the events held behind it.
func TestStatusShowsHeldKeys(t *testing.T) {
	f := start(t, 0)      // the sink refuses connections
	defer f.sink.set(nil) // then recovers, so that the pipeline drains at once
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := f.get(t, "/status")
		if strings.Contains(body, `"failing_keys": 1`) && strings.Contains(body, `"held": 1`) && strings.Contains(body, `"failing_since"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status never showed the failing key:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
