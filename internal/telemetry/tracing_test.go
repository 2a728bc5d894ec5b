package telemetry

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// otlpReceiver is an OTLP/HTTP trace receiver decoding protobuf exports.
type otlpReceiver struct {
	mu     sync.Mutex
	spans  []*tracepb.Span
	res    map[string]string
	apiKey string
}

func (c *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiKey = r.Header.Get("X-Api-Key")
	for _, rs := range req.ResourceSpans {
		c.res = map[string]string{}
		for _, kv := range rs.Resource.Attributes {
			c.res[kv.Key] = kv.Value.GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func newTracing(t testing.TB, h http.Handler) *Tracing {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	tr, err := NewTracing(context.Background(), config.Tracing{OTLPEndpoint: srv.URL, SampleRatio: 1, ServiceName: "ferry-test",
		Headers: map[string]ferry.Secret{"X-Api-Key": "k-123"}}, "v9", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

func TestSpansNestUnderTheCaller(t *testing.T) {
	c := &otlpReceiver{}
	tr := newTracing(t, c)
	req := httptest.NewRequest(http.MethodPost, "/hook", nil)
	tc, end := tr.StartRequest(context.Background(), "hooks", req,
		webhook.TraceContext{Traceparent: "00-" + callerTrace + "-" + callerSpan + "-01", Tracestate: "v=1"})
	end(http.StatusOK)
	if tracectx.TraceID(tc.Traceparent) != callerTrace || tc.Tracestate != "v=1" {
		t.Fatalf("request trace context %+v", tc)
	}
	e := event.New()
	e.SetID("ev-1")
	e.SetType("t")
	e.SetExtension("traceparent", tc.Traceparent)
	e.SetExtension("tracestate", tc.Tracestate)
	st := tr.Sink("bus")
	ok := st.Start(context.Background(), &e)
	failed := st.Start(context.Background(), &e)
	if st.Start(context.Background(), ptr(event.New())) != nil {
		t.Fatal("an event without traceparent got a span")
	}
	tp, ts := ok.Header()
	ok.End(2, nil)
	failed.End(1, errors.New("rejected"))
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.spans) != 3 || c.apiKey != "k-123" || c.res["service.name"] != "ferry-test" || c.res["service.version"] != "v9" {
		t.Fatalf("%d spans, api key %q, resource %v", len(c.spans), c.apiKey, c.res)
	}
	recv, deliver, dead := c.spans[0], c.spans[1], c.spans[2]
	h := hex.EncodeToString
	if recv.Name != "webhook receive" || h(recv.TraceId) != callerTrace || h(recv.ParentSpanId) != callerSpan {
		t.Fatalf("receive span %v", recv)
	}
	if tc.Traceparent != "00-"+callerTrace+"-"+h(recv.SpanId)+"-01" {
		t.Fatalf("events carry %s, not the receive span", tc.Traceparent)
	}
	if deliver.Name != "deliver bus" || h(deliver.ParentSpanId) != h(recv.SpanId) || deliver.Kind != tracepb.Span_SPAN_KIND_PRODUCER {
		t.Fatalf("deliver span %v", deliver)
	}
	if tp != "00-"+callerTrace+"-"+h(deliver.SpanId)+"-01" || ts != "v=1" {
		t.Fatalf("downstream gets %s %s", tp, ts)
	}
	if dead.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || dead.Status.GetMessage() != "rejected" ||
		deliver.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Fatalf("statuses %v / %v", deliver.Status, dead.Status)
	}
	attrs := map[string]string{}
	for _, kv := range deliver.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			attrs[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			attrs[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		}
	}
	if attrs["ferry.sink"] != "bus" || attrs["cloudevents.event_id"] != "ev-1" || attrs["ferry.attempts"] != "2" {
		t.Fatalf("attributes %v", attrs)
	}
}

func TestUnsampledCallerIsNotRecorded(t *testing.T) {
	c := &otlpReceiver{}
	tr := newTracing(t, c)
	tc, end := tr.StartRequest(context.Background(), "hooks", httptest.NewRequest(http.MethodPost, "/hook", nil),
		webhook.TraceContext{Traceparent: "00-" + callerTrace + "-" + callerSpan + "-00"})
	end(http.StatusOK)
	if tracectx.TraceID(tc.Traceparent) != callerTrace || tracectx.Sampled(tc.Traceparent) {
		t.Fatalf("unsampled caller: events carry %s", tc.Traceparent)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(c.spans) != 0 {
		t.Fatalf("%d spans exported for an unsampled trace", len(c.spans))
	}
}

func ptr(e event.Event) *event.Event { return &e }

// BenchmarkDeliverySpan is the cost tracing adds per traced event and
// sink when OTLP export is on: start, header, end (exported in batches in
// the background to a local otlpReceiver that discards).
func BenchmarkDeliverySpan(b *testing.B) {
	tr := newTracing(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer tr.Shutdown(context.Background())
	e := event.New()
	e.SetID("ev-1")
	e.SetType("t")
	e.SetExtension("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	st := tr.Sink("bus")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s := st.Start(ctx, &e)
		_, _ = s.Header()
		s.End(1, nil)
	}
}

// BenchmarkUntracedEvent is the cost for an event without traceparent
// (every binlog change) when OTLP export is on.
func BenchmarkUntracedEvent(b *testing.B) {
	tr := newTracing(b, http.NotFoundHandler())
	defer tr.Shutdown(context.Background())
	e := event.New()
	e.SetID("ev-1")
	st := tr.Sink("bus")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if st.Start(ctx, &e) != nil {
			b.Fatal("span for an untraced event")
		}
	}
}

// discardExporter drops spans: BenchmarkDeliverySpanNoExport separates
// the span's own cost from OTLP encoding and sending.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func BenchmarkDeliverySpanNoExport(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
	defer tp.Shutdown(context.Background())
	tr := &Tracing{provider: tp, tracer: tp.Tracer("bench")}
	e := event.New()
	e.SetID("ev-1")
	e.SetType("t")
	e.SetExtension("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	st := tr.Sink("bus")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s := st.Start(ctx, &e)
		_, _ = s.Header()
		s.End(1, nil)
	}
}
