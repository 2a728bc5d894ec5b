package pipeline

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/eventbridge"
	httpsink "github.com/ferry-cdc/ferry/connectors/http"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
	"github.com/ferry-cdc/ferry/transform"
)

// The degraded-delivery benchmarks run the pipeline with the default retry
// policy (100ms initial backoff, 30s max) over changes of distinct keys, and
// of 1000 hot keys, into a real sink, once against a healthy destination and
// once against a degraded one, in the same iteration, and report both rates
// and their ratio. Run them with -benchtime=1x: each iteration drains benchEvents
// changes twice.
const benchEvents = 20000

// drain runs a pipeline of n changes into sink and returns how long it
// took until every change was settled (delivered or dead-lettered).
func drain(b *testing.B, sink ferry.Sink, n, keys int) time.Duration {
	b.Helper()
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, _ := transform.New(transform.Options{TypePrefix: "bench", DefaultTo: []string{"s"}})
	src := &scriptSource{batches: n / 100, per: 100, keys: keys}
	rt, err := New(Config{Store: st, Engine: eng, Sources: []SourceSpec{{Name: "src", Source: src}},
		Sinks: []SinkSpec{{Name: "s", Sink: sink}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- rt.Run(ctx) }()
	released := rt.Stats().Source("src")
	for released.Released.Load() < uint64(n) {
		select {
		case err := <-done:
			cancel()
			b.Fatalf("pipeline stopped: %v", err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	took := time.Since(start)
	ss := rt.Stats().Sink("s")
	b.Logf("%d changes in %v: %d writes (%d failed, %v writing), %d retries", n, took.Round(time.Millisecond),
		ss.Writes.Load(), ss.Failures.Load(), time.Duration(ss.WriteNanos.Load()).Round(time.Millisecond), ss.Retries.Load())
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return took
}

func httpSink(b *testing.B, url string) ferry.Sink {
	b.Helper()
	cfg := httpsink.DefaultConfig()
	cfg.URL = url
	s, err := httpsink.New("s", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func report(b *testing.B, healthy, degraded time.Duration, delivered int) {
	h := float64(benchEvents) / healthy.Seconds()
	d := float64(delivered) / degraded.Seconds()
	b.ReportMetric(h, "healthy_events/s")
	b.ReportMetric(d, "degraded_events/s")
	b.ReportMetric(d/h, "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkFlakyHTTPEndpoint: binary mode, 8 lanes; the degraded endpoint
// answers 503 to one request in 5, at random. Target: ratio >= 0.6.
func BenchmarkFlakyHTTPEndpoint(b *testing.B) {
	eachKeySpread(b, func(b *testing.B, keys int) {
		healthy := receiver.New(receiver.WithDiscard())
		flaky := receiver.New(receiver.WithDiscard())
		flaky.FailRandomly(5, 503, uint64(time.Now().UnixNano()))
		h := drain(b, httpSink(b, healthy.Start(b)), benchEvents, keys)
		d := drain(b, httpSink(b, flaky.Start(b)), benchEvents, keys)
		if flaky.Count() < benchEvents {
			b.Fatalf("flaky endpoint got %d of %d", flaky.Count(), benchEvents)
		}
		b.Logf("flaky endpoint: %d requests for %d events", flaky.Attempts(), benchEvents)
		report(b, h, d, benchEvents)
	})
}

// BenchmarkPermanentRejects: the degraded endpoint rejects one event in 5
// with 400 (4000 of 20000); the rest are delivered and the rejected ones
// dead-lettered. Target: ratio (of the rest) >= 0.5.
func BenchmarkPermanentRejects(b *testing.B) {
	eachKeySpread(b, func(b *testing.B, keys int) {
		healthy := receiver.New(receiver.WithDiscard())
		picky := receiver.New(receiver.WithDiscard())
		picky.FailMatching(func(e event.Event) bool {
			n, _ := strconv.Atoi(e.ID())
			return n%5 == 0
		}, 400)
		h := drain(b, httpSink(b, healthy.Start(b)), benchEvents, keys)
		d := drain(b, httpSink(b, picky.Start(b)), benchEvents, keys)
		if picky.Count() != benchEvents*4/5 {
			b.Fatalf("picky endpoint accepted %d, want %d", picky.Count(), benchEvents*4/5)
		}
		report(b, h, d, benchEvents*4/5)
	})
}

// BenchmarkThrottledEventBridge: the EventBridge fake (real limits) throttles
// one PutEvents call in 4, at random. Target: ratio >= 0.5.
func BenchmarkThrottledEventBridge(b *testing.B) {
	eachKeySpread(b, func(b *testing.B, keys int) {
		healthy, throttled := ebfake.New(), ebfake.New()
		throttled.ThrottleRandomly(4, uint64(time.Now().UnixNano()))
		h := drain(b, ebSink(b, healthy), benchEvents, keys)
		d := drain(b, ebSink(b, throttled), benchEvents, keys)
		if n := len(throttled.Accepted()); n < benchEvents {
			b.Fatalf("throttled bus accepted %d of %d", n, benchEvents)
		}
		report(b, h, d, benchEvents)
	})
}

// eachKeySpread runs body as two sub-benchmarks: every change of its own
// key, and hot keys (1000 keys of 20 changes each, where a failure holds
// back the later changes of its key).
func eachKeySpread(b *testing.B, body func(b *testing.B, keys int)) {
	for _, keys := range []int{benchEvents, benchEvents / 20} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			for b.Loop() {
				body(b, keys)
			}
		})
	}
}

func ebSink(b *testing.B, f *ebfake.Server) ferry.Sink {
	b.Helper()
	srv := httptest.NewServer(f)
	b.Cleanup(srv.Close)
	cfg := eventbridge.DefaultConfig()
	cfg.Region, cfg.EventBus, cfg.Endpoint = "us-east-1", "bench", srv.URL
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDTEST", "test-secret"
	s, err := eventbridge.New(context.Background(), "s", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
