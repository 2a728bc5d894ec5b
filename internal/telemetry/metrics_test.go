package telemetry_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
	"github.com/ferry-cdc/ferry/internal/telemetry/scrape"
	"github.com/ferry-cdc/ferry/transform"
)

// oneBatchSource hands out its changes once, then waits like a streaming
// source with nothing new; it reports a fixed status.
type oneBatchSource struct {
	changes []ferry.Change
	sent    bool
	status  ferry.SourceStatus
}

func (s *oneBatchSource) Open(context.Context, ferry.Position) error { return nil }
func (s *oneBatchSource) Close(context.Context) error                { return nil }
func (s *oneBatchSource) Status() ferry.SourceStatus                 { return s.status }

func (s *oneBatchSource) Read(ctx context.Context) (ferry.Batch, error) {
	if s.sent || len(s.changes) == 0 {
		<-ctx.Done()
		return ferry.Batch{}, ctx.Err()
	}
	s.sent = true
	return ferry.Batch{Changes: s.changes, Checkpoint: ferry.Position("1")}, nil
}

// switchSink fails every Write while down is set.
type switchSink struct {
	mu   sync.Mutex
	down error
}

func (s *switchSink) Open(context.Context) error  { return nil }
func (s *switchSink) Close(context.Context) error { return nil }
func (s *switchSink) set(err error) {
	s.mu.Lock()
	s.down = err
	s.mu.Unlock()
}

func (s *switchSink) Write(context.Context, []*event.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// parallelSink is a healthy sink that reports how many requests it runs in
// parallel (pipeline.ConcurrencyReporter), as the HTTP sink does.
type parallelSink struct {
	switchSink
	limit int
}

func (s *parallelSink) Concurrency() int { return s.limit }

// RateLimited reports 4 requests held back 1.5 s in all, as an HTTP sink
// with a rate_limit does (pipeline.RateLimitReporter).
func (s *parallelSink) RateLimited() (int64, time.Duration, bool) {
	return 4, 1500 * time.Millisecond, true
}

func changes(n int, at time.Time) []ferry.Change {
	out := make([]ferry.Change, n)
	for i := range out {
		out[i] = ferry.Change{ID: string(rune('a' + i)), Op: ferry.OpCreate, Source: "db", DB: "shop", Table: "orders",
			After: ferry.Row{Columns: []string{"id"}, Values: []any{int64(i)}}, Time: at}
	}
	return out
}

// TestMetricsScrape runs a pipeline with one healthy and one failing sink
// and checks what a scraper reads, through a real HTTP server.
func TestMetricsScrape(t *testing.T) {
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := transform.New(transform.Options{TypePrefix: "t", DefaultTo: []string{"bus", "down"}})
	if err != nil {
		t.Fatal(err)
	}
	db := &oneBatchSource{changes: changes(3, time.Now()), status: ferry.SourceStatus{State: ferry.StateStreaming, Connected: true,
		Lag: 2 * time.Second, Position: "mysql-bin.000003:1234", BinlogFile: "mysql-bin.000003", BinlogPos: 1234}}
	hook := &oneBatchSource{status: ferry.SourceStatus{State: ferry.StateStreaming, Connected: true,
		Requests: map[int]uint64{202: 5, 401: 1}, Buffered: 2}}
	down := &switchSink{}
	down.set(errors.New("dial tcp: connection refused"))
	retry := pipeline.RetryPolicy{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	rt, err := pipeline.New(pipeline.Config{Engine: eng, Store: store, CheckpointInterval: 10 * time.Millisecond,
		Sources: []pipeline.SourceSpec{{Name: "db", Source: db}, {Name: "hook", Source: hook}},
		Sinks:   []pipeline.SinkSpec{{Name: "bus", Sink: &parallelSink{limit: 5}, Retry: retry}, {Name: "down", Sink: down, Retry: retry}}})
	if err != nil {
		t.Fatal(err)
	}
	m := telemetry.New("v1.2.3")
	m.Bind(telemetry.View{Stats: rt.Stats(), Sources: map[string]ferry.Source{"db": db, "hook": hook}})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() { cancel(); <-done }()

	get := func() scrape.Samples {
		t.Helper()
		s, err := scrape.Get(context.Background(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitFor(t, "retries on the failing sink", func() bool {
		v, _ := get().Value("ferry_sink_retries_total", "sink", "down")
		return v >= 3
	})
	s := get()
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"ferry_build_info", []string{"version", "v1.2.3"}, 1},
		{"ferry_source_events_read_total", []string{"source", "db"}, 3},
		{"ferry_source_events_read_total", []string{"source", "hook"}, 0},
		{"ferry_source_changes_dropped_total", []string{"source", "db"}, 0},
		{"ferry_source_rule_failures_total", []string{"source", "db"}, 0},
		{"ferry_source_connected", []string{"source", "db"}, 1},
		{"ferry_source_lag_seconds", []string{"source", "db"}, 2},
		{"ferry_source_binlog_file_number", []string{"source", "db"}, 3},
		{"ferry_source_binlog_position", []string{"source", "db"}, 1234},
		{"ferry_sink_events_delivered_total", []string{"sink", "bus"}, 3},
		{"ferry_sink_events_delivered_total", []string{"sink", "down"}, 0},
		{"ferry_sink_dead_letters_total", []string{"sink", "down"}, 0},
		{"ferry_sink_reachable", []string{"sink", "bus"}, 1},
		{"ferry_sink_reachable", []string{"sink", "down"}, 0},
		{"ferry_sink_buffer_events", []string{"sink", "bus"}, 0},
		{"ferry_sink_buffer_events", []string{"sink", "down"}, 3},
		{"ferry_sink_concurrency", []string{"sink", "bus"}, 5},
		{"ferry_sink_rate_limit_waits_total", []string{"sink", "bus"}, 4},
		{"ferry_sink_rate_limit_wait_seconds_total", []string{"sink", "bus"}, 1.5},
		{"ferry_sink_delivery_latency_seconds", []string{"sink", "bus"}, 3}, // sample count
		{"ferry_sink_delivery_latency_seconds", []string{"sink", "down"}, 0},
		{"ferry_pipeline_in_flight_events", nil, 3},
		{"ferry_webhook_requests_total", []string{"source", "hook", "code", "202"}, 5},
		{"ferry_webhook_requests_total", []string{"source", "hook", "code", "401"}, 1},
		{"ferry_webhook_buffer_records", []string{"source", "hook"}, 2},
	}
	for _, w := range want {
		got, ok := s.Value(w.name, w.labels...)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	for _, absent := range []string{"ferry_ha_leader", "ferry_source_checkpoint_age_seconds"} {
		if _, ok := s[absent]; ok {
			t.Errorf("%s is exported before it means anything", absent)
		}
	}
	if _, ok := s.Value("ferry_sink_concurrency", "sink", "down"); ok {
		t.Error("a sink that does not report its concurrency has a concurrency gauge")
	}
	if _, ok := s.Value("ferry_sink_rate_limit_waits_total", "sink", "down"); ok {
		t.Error("a sink without a rate limit has rate limit counters")
	}
	if _, ok := s.Value("ferry_webhook_requests_total", "source", "db"); ok {
		t.Error("a binlog source has webhook request counts")
	}
	if _, ok := s.Value("ferry_source_binlog_position", "source", "hook"); ok {
		t.Error("a webhook source has a binlog position")
	}

	down.set(nil)
	m.SetLeader("db", true)
	waitFor(t, "the failing sink to recover and the checkpoint to be saved", func() bool {
		s := get()
		v, _ := s.Value("ferry_sink_events_delivered_total", "sink", "down")
		_, saved := s.Value("ferry_source_checkpoint_age_seconds", "source", "db")
		return v == 3 && saved
	})
	s = get()
	for _, w := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"ferry_sink_reachable", []string{"sink", "down"}, 1},
		{"ferry_sink_buffer_events", []string{"sink", "down"}, 0},
		{"ferry_pipeline_in_flight_events", nil, 0},
		{"ferry_ha_leader", []string{"source", "db"}, 1},
	} {
		if got, ok := s.Value(w.name, w.labels...); !ok || got != w.value {
			t.Errorf("after recovery %s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if age, _ := s.Value("ferry_source_checkpoint_age_seconds", "source", "db"); age < 0 || age > 60 {
		t.Errorf("checkpoint age %v s", age)
	}
	h, _ := s.Find("ferry_sink_delivery_latency_seconds", "sink", "down")
	if hist := h.GetHistogram(); hist.GetSampleCount() != 3 || hist.GetSampleSum() <= 0 || len(hist.GetBucket()) != len(pipeline.LatencyBuckets())+1 { // +Inf too
		t.Errorf("latency histogram of the recovered sink: %v", hist)
	}
}

func TestMetricsLint(t *testing.T) {
	m := telemetry.New("dev")
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "ferry_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestFileNumber(t *testing.T) {
	for file, want := range map[string]int64{"mysql-bin.000042": 42, "binlog.1": 1, "nofile": -1, "x.abc": -1} {
		n, ok := telemetry.FileNumber(file)
		if (want < 0 && ok) || (want >= 0 && (!ok || n != uint64(want))) {
			t.Errorf("FileNumber(%q) = %d, %v", file, n, ok)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
