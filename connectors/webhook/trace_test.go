package webhook_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/state"
)

const (
	callerTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	otherTP  = "00-11111111111111111111111111111111-2222222222222222-01"
)

func TestTraceContextBecomesExtensions(t *testing.T) {
	f := start(t, func(c *webhook.Config) { c.Extensions = map[string]string{"traceparent": "X-Spoof"} })
	cases := []struct {
		name    string
		headers []string
		wantTP  string
		wantTS  string
		invalid uint64
	}{
		{"valid", []string{"traceparent", callerTP, "tracestate", "v=1"}, callerTP, "v=1", 0},
		{"uppercase is invalid", []string{"traceparent", strings.ToUpper(callerTP), "tracestate", "v=1"}, "", "", 1},
		{"truncated", []string{"traceparent", callerTP[:40]}, "", "", 2},
		{"a mapped header does not replace it", []string{"traceparent", callerTP, "X-Spoof", "evil"}, callerTP, "", 2},
		{"none", nil, "", "", 2},
	}
	for _, c := range cases {
		resp, body := f.post(t, "application/json", `{}`, c.headers...)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, resp.StatusCode, body)
		}
		x := f.read(t).Changes[0].Request.Extensions
		if x["traceparent"] != c.wantTP || x["tracestate"] != c.wantTS {
			t.Errorf("%s: extensions %v", c.name, x)
		}
		if got := f.src.Stats().InvalidTraceparent.Load(); got != c.invalid {
			t.Errorf("%s: %d invalid counted, want %d", c.name, got, c.invalid)
		}
	}
}

func TestTwoTraceparentHeadersAreInvalid(t *testing.T) {
	f := start(t, nil)
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("traceparent", callerTP)
	req.Header.Add("traceparent", otherTP)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if x := f.read(t).Changes[0].Request.Extensions; x["traceparent"] != "" || f.src.Stats().InvalidTraceparent.Load() != 1 {
		t.Fatalf("extensions %v", x)
	}
}

// A CloudEvent request keeps its own traceparent; one without gets the
// request's.
func TestCloudEventsKeepTheirTraceparent(t *testing.T) {
	f := start(t, nil)
	post := func(extra ...string) map[string]any {
		h := append([]string{"ce-specversion", "1.0", "ce-id", "x", "ce-source", "/s", "ce-type", "t", "traceparent", callerTP}, extra...)
		if resp, body := f.post(t, "application/json", `{}`, h...); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return f.read(t).Changes[0].Request.Event.Extensions()
	}
	if x := post(); x["traceparent"] != callerTP {
		t.Fatalf("CloudEvent without traceparent: %v", x)
	}
	if x := post("ce-traceparent", otherTP); x["traceparent"] != otherTP {
		t.Fatalf("CloudEvent with its own traceparent: %v", x)
	}
}

// fakeTracer answers with its own trace context and records statuses.
type fakeTracer struct {
	mu       sync.Mutex
	parents  []string
	statuses []int
}

func (f *fakeTracer) StartRequest(_ context.Context, _ string, _ *http.Request, parent webhook.TraceContext) (webhook.TraceContext, func(int)) {
	f.mu.Lock()
	f.parents = append(f.parents, parent.Traceparent)
	f.mu.Unlock()
	return webhook.TraceContext{Traceparent: otherTP}, func(status int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.statuses = append(f.statuses, status)
	}
}

func TestTracerSpansEveryRequest(t *testing.T) {
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := webhook.DefaultConfig()
	cfg.Listen, cfg.Path, cfg.Methods = "127.0.0.1:0", "/traced", []string{http.MethodPost}
	tr := &fakeTracer{}
	src, err := webhook.New("traced", cfg, app.NewWebhookJournal(store), nil, webhook.WithTracer(tr))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	f := &fixture{src: src, url: "http://" + src.Addr() + cfg.Path, store: store}
	f.post(t, "application/json", `{}`, "traceparent", callerTP)
	if x := f.read(t).Changes[0].Request.Extensions; x["traceparent"] != otherTP {
		t.Fatalf("events must carry the tracer's context: %v", x)
	}
	req, _ := http.NewRequest(http.MethodPut, f.url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.parents) != 2 || tr.parents[0] != callerTP || tr.parents[1] != "" ||
		len(tr.statuses) != 2 || tr.statuses[0] != http.StatusOK || tr.statuses[1] != http.StatusMethodNotAllowed {
		t.Fatalf("parents %v statuses %v", tr.parents, tr.statuses)
	}
}
