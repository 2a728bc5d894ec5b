package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.uber.org/goleak"
)

func testEvent(id string) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType("com.example.test")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"id": id})
	return &e
}

// post sends events in the given mode and returns the status code.
func post(t *testing.T, url, mode string, events ...*event.Event) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "batch":
		body, _ := json.Marshal(events)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	case "structured":
		err = cehttp.WriteRequest(binding.WithForceStructured(context.Background()), binding.ToMessage(events[0]), req)
	default:
		err = cehttp.WriteRequest(binding.WithForceBinary(context.Background()), binding.ToMessage(events[0]), req)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestModes(t *testing.T) {
	cases := []struct {
		mode string
		n    int
	}{{"binary", 1}, {"structured", 1}, {"batch", 3}, {"batch", 0}}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := New()
			var events []*event.Event
			for i := range max(c.n, 1) {
				events = append(events, testEvent(c.mode+string(rune('a'+i))))
			}
			if c.mode == "batch" {
				events = events[:c.n]
			}
			if got := post(t, r.Start(t), c.mode, events...); got != http.StatusOK {
				t.Fatalf("status %d", got)
			}
			got := r.Events()
			if len(got) != c.n || r.Count() != c.n || len(r.Requests()) != 1 || r.Attempts() != 1 {
				t.Fatalf("events %d, count %d, requests %d, attempts %d", len(got), r.Count(), len(r.Requests()), r.Attempts())
			}
			for i, e := range got {
				if e.ID() != events[i].ID() || string(e.Data()) != string(events[i].Data()) {
					t.Errorf("event %d = %s %s", i, e.ID(), e.Data())
				}
			}
		})
	}
}

func TestRejectsWhatIsNoCloudEvent(t *testing.T) {
	r := New()
	url := r.Start(t)
	cases := []struct {
		name, contentType, body string
		want                    int
	}{
		{"plain JSON", "application/json", `{"a":1}`, 400},
		{"broken batch", "application/cloudevents-batch+json", `[{"id":`, 400},
		{"invalid event in a batch", "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"x"}]`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(url, c.contentType, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
		})
	}
	if r.Count() != 0 || r.Attempts() != len(cases) {
		t.Fatalf("count %d, attempts %d", r.Count(), r.Attempts())
	}
}

func TestProgrammedFailures(t *testing.T) {
	r := New()
	url := r.Start(t)
	r.FailNext(2, 503, "3")
	for i, want := range []int{503, 503, 200} {
		if got := post(t, url, "binary", testEvent("f")); got != want {
			t.Fatalf("request %d: status %d, want %d", i, got, want)
		}
	}
	r.SetOutage(true)
	if got := post(t, url, "binary", testEvent("o")); got != 503 {
		t.Fatalf("outage: status %d", got)
	}
	r.SetOutage(false)
	r.FailMatching(func(e event.Event) bool { return e.ID() == "poison" }, 400)
	if got := post(t, url, "batch", testEvent("ok"), testEvent("poison")); got != 400 {
		t.Fatalf("poison batch: status %d", got)
	}
	if got := post(t, url, "binary", testEvent("fine")); got != 200 {
		t.Fatalf("healthy event: status %d", got)
	}
	if r.Count() != 2 || r.Attempts() != 6 {
		t.Fatalf("count %d, attempts %d; want 2, 6", r.Count(), r.Attempts())
	}
}

func TestFailNextIsExactUnderConcurrency(t *testing.T) {
	r := New()
	url := r.Start(t)
	r.FailNext(10, 500, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := range 40 {
		wg.Go(func() {
			if post(t, url, "binary", testEvent(string(rune('A'+i)))) == 500 {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if failed != 10 || r.Count() != 30 {
		t.Fatalf("%d failed, %d accepted; want 10, 30", failed, r.Count())
	}
}

func TestDelayEndsWhenTheClientGivesUp(t *testing.T) {
	r := New(WithDelay(time.Minute))
	returned := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer close(returned)
		r.ServeHTTP(w, req)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	_ = cehttp.WriteRequest(context.Background(), binding.ToMessage(testEvent("slow")), req)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do = %v", err)
	}
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Fatal("the handler still waits after the client gave up")
	}
}

func TestDiscardWaitForAndCount(t *testing.T) {
	r := New(WithDiscard())
	url := r.Start(t)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- r.WaitFor(ctx, 3)
	}()
	post(t, url, "batch", testEvent("a"), testEvent("b"), testEvent("c"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(r.Events()) != 0 || len(r.Requests()) != 0 {
		t.Fatal("discard mode kept events")
	}
	resp, err := http.Get(strings.TrimSuffix(url, "/events") + "/count")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Count != 3 {
		t.Fatalf("GET /count = %+v, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor(4) = %v", err)
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, ln) }()
	if got := post(t, "http://"+ln.Addr().String()+"/events", "binary", testEvent("s")); got != 200 {
		t.Fatalf("status %d", got)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
