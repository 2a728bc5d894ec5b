package integration

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// otlpCollector is an OTLP/HTTP trace receiver: POST /v1/traces with a
// protobuf ExportTraceServiceRequest, as a collector accepts it.
type otlpCollector struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	headers []http.Header
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.headers = append(c.headers, r.Header.Clone())
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// byName returns the exported spans by name (each name once).
func (c *otlpCollector) byName(t *testing.T) map[string]*tracepb.Span {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range c.spans {
		if out[s.Name] != nil {
			t.Fatalf("span %q exported twice", s.Name)
		}
		out[s.Name] = s
	}
	return out
}

// kafkaHeaders returns the headers of the first record of topic.
func kafkaHeaders(t *testing.T, brokers []string, topic string) map[string]string {
	t.Helper()
	h := map[string]string{}
	if recs := kafkatest.Consume(t, brokers, topic); len(recs) > 0 {
		for _, x := range recs[0].Headers {
			h[x.Key] = string(x.Value)
		}
	}
	return h
}

// traceRun is one ferry run with a webhook source fanning out to HTTP,
// Kafka and EventBridge.
type traceRun struct {
	r       *receiver.Receiver
	kc      *kfake.Cluster
	eb      *ebfake.Server
	listen  string
	p       *ferryProc
	tracing string // the tracing: block, or ""
}

func startTraceRun(t *testing.T, tracing string) *traceRun {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	eb := ebfake.New()
	ebSrv := httptest.NewServer(eb)
	t.Cleanup(ebSrv.Close)
	tr := &traceRun{r: receiver.New(), kc: kc, eb: eb, listen: freeAddr(t), tracing: tracing}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: off}
%s
defaults: {to: [recv, bus, eb]}
sources:
  hooks: {type: webhook, listen: "%s", path: /hook}
sinks:
  recv: {type: http, url: "%s"}
  bus: {type: kafka, brokers: ["%s"], topic: events}
  eb:
    type: eventbridge
    region: us-east-1
    event_bus: events
    endpoint: %s
    access_key_id: AKIDTEST
    secret_access_key: test-secret
`, dir, tracing, tr.listen, receiver.Start(t, tr.r), kc.ListenAddrs()[0], ebSrv.URL))
	tr.p = startFerry(t, cfg)
	return tr
}

// post sends one webhook request with the given trace headers.
func (tr *traceRun) post(t *testing.T, traceparent, tracestate string) {
	t.Helper()
	eventually(t, 20*time.Second, "the webhook listener", func() bool {
		req, _ := http.NewRequest(http.MethodPost, "http://"+tr.listen+"/hook", strings.NewReader(`{"order":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", traceparent)
		req.Header.Set("tracestate", tracestate)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// delivered waits for the event at every sink and returns the trace
// context each one got: HTTP traceparent header, HTTP ce-traceparent,
// Kafka traceparent header, EventBridge TraceHeader.
func (tr *traceRun) delivered(t *testing.T) (httpTP, ceTP, kafkaTP, kafkaTS, ebTrace string) {
	t.Helper()
	var kh map[string]string
	eventually(t, 30*time.Second, "the event at every sink", func() bool {
		kh = kafkaHeaders(t, tr.kc.ListenAddrs(), "events")
		return tr.r.Count() == 1 && len(tr.eb.Accepted()) == 1 && len(kh) > 0
	})
	req := tr.r.Requests()[0]
	return req.Header.Get("Traceparent"), req.Header.Get("Ce-Traceparent"), kh["traceparent"], kh["tracestate"],
		tr.eb.Accepted()[0].TraceHeader
}

const (
	inTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	inSpan  = "00f067aa0ba902b7"
	inTP    = "00-" + inTrace + "-" + inSpan + "-01"
	inTS    = "vendor=opaque"
)

// TestTracePassThrough: without tracing configured, the webhook's W3C
// trace context reaches every sink unchanged.
func TestTracePassThrough(t *testing.T) {
	tr := startTraceRun(t, "")
	tr.post(t, inTP, inTS)
	httpTP, ceTP, kafkaTP, kafkaTS, ebTrace := tr.delivered(t)
	wantXRay := "Root=1-" + inTrace[:8] + "-" + inTrace[8:] + ";Parent=" + inSpan + ";Sampled=1"
	if httpTP != inTP || ceTP != inTP || kafkaTP != inTP || kafkaTS != inTS || ebTrace != wantXRay {
		t.Fatalf("trace context at the sinks: http %q, ce %q, kafka %q %q, eventbridge %q", httpTP, ceTP, kafkaTP, kafkaTS, ebTrace)
	}
	if got := tr.r.Requests()[0].Header.Get("Tracestate"); got != inTS {
		t.Fatalf("http tracestate %q", got)
	}
	if code := tr.p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestTraceExportOTLP: with tracing configured, Ferry exports a "webhook
// receive" span (child of the caller's) and a "deliver <sink>" span per
// sink (children of the receive span) to a real OTLP/HTTP receiver, and
// each sink gets its delivery span's context, in the caller's trace.
func TestTraceExportOTLP(t *testing.T) {
	col := &otlpCollector{}
	colSrv := httptest.NewServer(col)
	defer colSrv.Close()
	tr := startTraceRun(t, fmt.Sprintf(`tracing:
  otlp_endpoint: %s
  headers: {X-Api-Key: otlp-key-123}
  service_name: ferry-test`, colSrv.URL))
	tr.post(t, inTP, inTS)
	httpTP, ceTP, kafkaTP, kafkaTS, ebTrace := tr.delivered(t)
	if code := tr.p.stop(); code != 0 { // shutdown flushes the spans
		t.Fatalf("exit code %d", code)
	}
	spans := col.byName(t)
	recv := spans["webhook receive"]
	if recv == nil || len(spans) != 4 {
		t.Fatalf("exported spans: %v", names(spans))
	}
	hexID := func(b []byte) string { return hex.EncodeToString(b) }
	if hexID(recv.TraceId) != inTrace || hexID(recv.ParentSpanId) != inSpan || recv.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Fatalf("webhook receive: trace %x parent %x kind %v", recv.TraceId, recv.ParentSpanId, recv.Kind)
	}
	// The event was created in the receive span: its traceparent extension.
	if want := "00-" + inTrace + "-" + hexID(recv.SpanId) + "-01"; ceTP != want {
		t.Fatalf("ce-traceparent %q, want the receive span %q", ceTP, want)
	}
	for sink, got := range map[string]string{"recv": httpTP, "bus": kafkaTP, "eb": ebTrace} {
		d := spans["deliver "+sink]
		if d == nil {
			t.Fatalf("no deliver span for %s: %v", sink, names(spans))
		}
		if hexID(d.TraceId) != inTrace || hexID(d.ParentSpanId) != hexID(recv.SpanId) || d.Status.GetCode() != tracepb.Status_STATUS_CODE_UNSET {
			t.Fatalf("deliver %s: trace %x parent %x status %v", sink, d.TraceId, d.ParentSpanId, d.Status)
		}
		want := "00-" + inTrace + "-" + hexID(d.SpanId) + "-01"
		if sink == "eb" {
			want = "Root=1-" + inTrace[:8] + "-" + inTrace[8:] + ";Parent=" + hexID(d.SpanId) + ";Sampled=1"
		}
		if got != want {
			t.Fatalf("sink %s got trace context %q, want its delivery span's %q", sink, got, want)
		}
	}
	if kafkaTS != inTS {
		t.Fatalf("kafka tracestate %q, want the caller's %q", kafkaTS, inTS)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.headers) == 0 || col.headers[0].Get("X-Api-Key") != "otlp-key-123" {
		t.Fatal("the configured OTLP header did not reach the collector")
	}
}

func names(spans map[string]*tracepb.Span) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}
