package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// syncBuffer collects log output from concurrent lanes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newSink opens a sink for url with the defaults changed by mut, logging at
// debug level into the returned buffer; it is closed when the test ends.
func newSink(t *testing.T, url string, mut func(*Config)) (*Sink, *syncBuffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	if mut != nil {
		mut(cfg)
	}
	logs := &syncBuffer{}
	// As the application does: the log it hands a sink names the sink.
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("sink", "audit")
	s, err := New("audit", cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, logs
}

// eventErr returns the error of event i of a failed Write.
func eventErr(t *testing.T, err error, i int) error {
	t.Helper()
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Failed(i) == nil {
		t.Fatalf("Write = %v, want event %d failed", err, i)
	}
	return be.Failed(i)
}

func TestAcceptance(t *testing.T) {
	for _, mode := range []string{ModeBinary, ModeStructured, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			url := r.Start(t)
			conntest.RunSink(t, receiverHarness(r, func(cfg *Config) { cfg.URL, cfg.Mode = url, mode }))
		})
	}
}

// receiverHarness is the acceptance suite's harness for a sink configured
// by configure (from DefaultConfig) that posts to r; failures injected by
// the suite are r's 503 answers to the matching events.
func receiverHarness(r *receiver.Receiver, configure func(*Config)) conntest.SinkHarness {
	return conntest.SinkHarness{
		New: func(t *testing.T) ferry.Sink {
			cfg := DefaultConfig()
			configure(cfg)
			s, err := New("audit", cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Received: func(*testing.T) []event.Event { return r.Events() },
		FailEvents: func(_ *testing.T, match func(string) bool) {
			if match == nil {
				r.FailMatching(nil, 0)
				return
			}
			r.FailMatching(func(e event.Event) bool { return match(e.ID()) }, 503)
		},
	}
}

func TestWireFormat(t *testing.T) {
	cases := []struct {
		mode, method string
		contentType  string
		requests     int
		ceHeaders    bool
	}{
		{ModeBinary, "POST", "application/json", 3, true},
		{ModeStructured, "PUT", "application/cloudevents+json", 3, false},
		{ModeBatch, "post", "application/cloudevents-batch+json", 1, false},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := receiver.New()
			s, _ := newSink(t, r.Start(t), func(cfg *Config) {
				cfg.Mode, cfg.Method, cfg.Concurrency = c.mode, c.method, 1
				cfg.Headers = map[string]ferry.Secret{"x-api-key": "k1"}
			})
			if err := s.Write(context.Background(), conntest.Events(3, 1)); err != nil {
				t.Fatal(err)
			}
			reqs := r.Requests()
			if len(reqs) != c.requests {
				t.Fatalf("%d requests for 3 events, want %d", len(reqs), c.requests)
			}
			req := reqs[0]
			if req.Method != strings.ToUpper(c.method) || req.Header.Get("X-Api-Key") != "k1" || req.Header.Get("User-Agent") != "ferry" {
				t.Errorf("method %s, headers %v", req.Method, req.Header)
			}
			if got := req.Header.Get("Content-Type"); !strings.HasPrefix(got, c.contentType) {
				t.Errorf("Content-Type = %q, want %q", got, c.contentType)
			}
			id, key := req.Header.Get("Ce-Id"), req.Header.Get("Ce-Partitionkey")
			if c.ceHeaders != (id == "conntest-0" && key == "db.t/0" && req.Header.Get("Ce-Specversion") == "1.0") {
				t.Errorf("ce-id %q, ce-partitionkey %q; want ce-* headers: %v", id, key, c.ceHeaders)
			}
			if got := r.Events(); len(got) != 3 || string(got[2].Data()) != string(conntest.Events(3, 1)[2].Data()) {
				t.Errorf("received %v", got)
			}
		})
	}
}

// laneFailure is one run of TestFailedEventHoldsBackItsLane.
type laneFailure struct {
	name      string
	status    int
	permanent bool
}

func TestFailedEventHoldsBackItsLane(t *testing.T) {
	for _, c := range []laneFailure{{"transient", 500, false}, {"permanent", 400, true}} {
		t.Run(c.name, func(t *testing.T) { testLaneFailure(t, c) })
	}
}

func testLaneFailure(t *testing.T, c laneFailure) {
	const poison = 6
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return e.ID() == "conntest-6" }, c.status)
	s, _ := newSink(t, r.Start(t), func(cfg *Config) { cfg.Concurrency = 4 })
	events := conntest.Events(20, 4)
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a *ferry.BatchError", err)
	}
	lanes := map[int]bool{}
	for _, e := range events[:4] {
		lanes[laneOf(conntest.PartitionKey(e), 4)] = true
	}
	if len(lanes) != 4 {
		t.Fatal("the four keys share lanes; pick keys that do not, so that other keys are seen to succeed")
	}
	badLane := laneOf(conntest.PartitionKey(events[poison]), 4)
	var wantFailed []int
	for i, e := range events {
		if i >= poison && laneOf(conntest.PartitionKey(e), 4) == badLane {
			wantFailed = append(wantFailed, i)
		}
	}
	if got := be.Indexes(); !slices.Equal(got, wantFailed) {
		t.Fatalf("failed %v, want %v", got, wantFailed)
	}
	if ferry.IsPermanent(be.Failed(poison)) != c.permanent {
		t.Errorf("event %d: %v, want permanent=%v", poison, be.Failed(poison), c.permanent)
	}
	for _, i := range wantFailed[1:] {
		if err := be.Failed(i); ferry.IsPermanent(err) || !strings.Contains(err.Error(), "not attempted") {
			t.Errorf("event %d: %v, want transient \"not attempted\"", i, err)
		}
	}
	got := map[string]bool{}
	for _, e := range r.Events() {
		got[e.ID()] = true
	}
	for i, e := range events {
		if got[e.ID()] == slices.Contains(wantFailed, i) {
			t.Errorf("event %d (key %s): received=%v", i, conntest.PartitionKey(e), got[e.ID()])
		}
	}
	if r.Attempts() != len(events)-len(wantFailed)+1 {
		t.Errorf("%d requests, want %d: held-back events must not be sent", r.Attempts(), len(events)-len(wantFailed)+1)
	}
}

func TestCancelledWhileSending(t *testing.T) {
	r := receiver.New(receiver.WithDelay(5 * time.Second))
	s, logs := newSink(t, r.Start(t), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Write(ctx, conntest.Events(10, 3))
	if !errors.Is(err, context.DeadlineExceeded) || ferry.IsPermanent(err) {
		t.Fatalf("Write = %v, want a transient error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Write returned %v after its context ended", d)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("cancellation logged as a failure:\n%s", logs)
	}
}

func TestBatchLimits(t *testing.T) {
	big := conntest.Events(1, 1)[0]
	big.SetID("big")
	_ = big.SetData(event.ApplicationJSON, map[string]string{"blob": strings.Repeat("x", 3000)})
	withBig := conntest.Events(5, 1)
	withBig[2] = big
	cases := []struct {
		name      string
		events    []*event.Event
		maxEvents int
		maxBytes  int
	}{
		{"by event count", conntest.Events(10, 2), 4, 1 << 20},
		{"by bytes", conntest.Events(10, 2), 100, 1024},
		{"oversized event goes alone", withBig, 100, 1024},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := receiver.New()
			var mu sync.Mutex
			var sizes []int64
			var counts []int
			srv := recordingServer(t, r, func(req *http.Request, n int) {
				mu.Lock()
				defer mu.Unlock()
				sizes, counts = append(sizes, req.ContentLength), append(counts, n)
			})
			s, _ := newSink(t, srv, func(cfg *Config) {
				cfg.Mode, cfg.Concurrency, cfg.BatchMaxEvents, cfg.BatchMaxBytes = ModeBatch, 1, c.maxEvents, c.maxBytes
			})
			if err := s.Write(context.Background(), c.events); err != nil {
				t.Fatal(err)
			}
			want := expectedChunks(t, c.events, c.maxEvents, c.maxBytes)
			if !slices.Equal(counts, want) {
				t.Fatalf("events per request %v, want %v (bodies %v bytes)", counts, want, sizes)
			}
			for i, size := range sizes {
				if size > int64(c.maxBytes) && counts[i] > 1 {
					t.Errorf("request %d: %d events in %d bytes, over batch_max_bytes", i, counts[i], size)
				}
			}
			if r.Count() != len(c.events) {
				t.Fatalf("received %d of %d events", r.Count(), len(c.events))
			}
		})
	}
}

// recordingServer serves r and reports each request with the number of
// events it added; requests must not overlap.
func recordingServer(t *testing.T, r *receiver.Receiver, record func(req *http.Request, events int)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		before := r.Count()
		r.ServeHTTP(w, req)
		record(req, r.Count()-before)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/events"
}

// expectedChunks splits events greedily the way batch mode must.
func expectedChunks(t *testing.T, events []*event.Event, maxEvents, maxBytes int) []int {
	t.Helper()
	var chunks []int
	n, size := 0, 1 // "["
	for _, e := range events {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
		l := b.Len() - 1
		if n > 0 && (n == maxEvents || size+1+l+1 > maxBytes) {
			chunks, n, size = append(chunks, n), 0, 1
		}
		if n > 0 {
			size++
		}
		n, size = n+1, size+l
	}
	return append(chunks, n)
}
