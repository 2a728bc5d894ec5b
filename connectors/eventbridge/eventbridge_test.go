package eventbridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
)

func fake(t *testing.T) (*ebfake.Server, string) {
	f := ebfake.New()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func newSink(t *testing.T, endpoint string, mut func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Region, cfg.EventBus, cfg.Endpoint = "us-east-1", "orders", endpoint
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDTEST", "test-secret"
	if mut != nil {
		mut(cfg)
	}
	s, err := New(context.Background(), "bus", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asEvents turns accepted entries back into the events they carry.
func asEvents(t *testing.T, entries []ebfake.Entry) []event.Event {
	var out []event.Event
	for _, en := range entries {
		var e event.Event
		if err := json.Unmarshal([]byte(en.Detail), &e); err != nil {
			t.Fatalf("detail %s: %v", en.Detail, err)
		}
		out = append(out, e)
	}
	return out
}

func TestAcceptance(t *testing.T) {
	f, url := fake(t)
	conntest.RunSink(t, conntest.SinkHarness{
		New:      func(t *testing.T) ferry.Sink { return newSink(t, url, func(c *Config) { c.Detail = "event" }) },
		Received: func(t *testing.T) []event.Event { return asEvents(t, f.Accepted()) },
		FailEvents: func(t *testing.T, match func(string) bool) {
			f.FailEntries(func(en ebfake.Entry) string {
				var e struct{ ID string }
				if match != nil && json.Unmarshal([]byte(en.Detail), &e) == nil && match(e.ID) {
					return "ThrottlingException"
				}
				return ""
			})
		},
	})
}

func TestEntryMapping(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, func(c *Config) { c.Resources = `["arn:aws:dynamodb:us-east-1:1:table/" + subject]` })
	e := conntest.Events(1, 1)[0]
	e.SetSource("aws.legacy/erp") // reserved by AWS: must be prefixed
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	arr := conntest.Events(1, 1)[0]
	arr.SetID("arr")
	_ = arr.SetData(event.ApplicationJSON, json.RawMessage(`[1,2]`))
	if err := s.Write(context.Background(), []*event.Event{e, arr}); err != nil {
		t.Fatal(err)
	}
	got := f.Accepted()
	en := got[0]
	if en.Source != "ferry.aws.legacy/erp" || en.DetailType != e.Type() || en.EventBusName != "orders" || en.Time == nil ||
		int64(*en.Time) != e.Time().Unix() || en.TraceHeader != "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" ||
		len(en.Resources) != 1 || en.Resources[0] != "arn:aws:dynamodb:us-east-1:1:table/0" || !strings.HasPrefix(en.Detail, `{"`) {
		t.Fatalf("entry = %+v", en)
	}
	if got[1].Detail != `{"data":[1,2]}` {
		t.Fatalf("non-object data must be wrapped: %s", got[1].Detail)
	}
}

func TestBatchingByCountAndSize(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, func(c *Config) { c.Concurrency = 1 })
	if err := s.Write(context.Background(), conntest.Events(25, 25)); err != nil {
		t.Fatal(err)
	}
	if f.Calls() != 3 || len(f.Accepted()) != 25 {
		t.Fatalf("25 small events took %d calls (want 3: 10+10+5), accepted %d", f.Calls(), len(f.Accepted()))
	}
	big := conntest.Events(4, 4)
	for _, e := range big {
		_ = e.SetData(event.ApplicationJSON, json.RawMessage(`{"pad":"`+strings.Repeat("x", 100*1024)+`"}`))
	}
	before := f.Calls()
	if err := s.Write(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls() - before; n != 2 { // two 100 KB entries fit in 256 KB, three do not
		t.Fatalf("four 100 KB entries took %d calls, want 2", n)
	}
}

func TestOversizedAndMalformedAreDeadLettered(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, nil)
	events := conntest.Events(3, 3)
	_ = events[0].SetData(event.ApplicationJSON, json.RawMessage(`{"pad":"`+strings.Repeat("x", 300*1024)+`"}`))
	f.FailEntries(func(e ebfake.Entry) string {
		if strings.Contains(e.Detail, `"n":2`) {
			return "MalformedDetail"
		}
		return ""
	})
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Len() != 2 || !ferry.IsPermanent(be.Failed(0)) || !ferry.IsPermanent(be.Failed(2)) ||
		!strings.Contains(be.Failed(0).Error(), "256 KB") || !strings.Contains(be.Failed(2).Error(), "MalformedDetail") {
		t.Fatalf("Write = %v", err)
	}
	if len(f.Accepted()) != 1 {
		t.Fatalf("accepted %d, want the one good event", len(f.Accepted()))
	}
}

// TestPartialFailuresRetriedWithoutDuplicates: the service refuses some
// entries of a call (throttled); the sink reports exactly those, and
// retrying them (as the pipeline does) never re-sends accepted ones.
func TestPartialFailuresRetriedWithoutDuplicates(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, nil)
	attempts := map[string]int{}
	f.FailEntries(func(e ebfake.Entry) string {
		attempts[e.Detail]++
		if strings.Contains(e.Detail, `"n":3`) || strings.Contains(e.Detail, `"n":17`) {
			if attempts[e.Detail] < 3 {
				return "ThrottlingException"
			}
		}
		return ""
	})
	pending := conntest.Events(30, 30)
	for round := 0; len(pending) > 0 && round < 10; round++ {
		err := s.Write(context.Background(), pending)
		if err == nil {
			pending = nil
			break
		}
		var be *ferry.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("Write = %v", err)
		}
		var retry []*event.Event
		for _, i := range be.Indexes() {
			if ferry.IsPermanent(be.Failed(i)) {
				t.Fatalf("throttled entry classified permanent: %v", be.Failed(i))
			}
			retry = append(retry, pending[i])
		}
		pending = retry
	}
	if len(pending) > 0 {
		t.Fatalf("%d events never accepted", len(pending))
	}
	seen := map[string]int{}
	for _, e := range asEventsData(f.Accepted()) {
		seen[e]++
	}
	if len(seen) != 30 {
		t.Fatalf("%d distinct events accepted, want 30", len(seen))
	}
	for d, n := range seen {
		if n != 1 {
			t.Fatalf("entry %s accepted %d times: a partial retry re-sent it", d, n)
		}
	}
}

func asEventsData(entries []ebfake.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Detail
	}
	return out
}

func TestThrottledCallIsTransient(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, nil)
	f.ThrottleNext(1)
	err := s.Write(context.Background(), conntest.Events(1, 1))
	var be *ferry.BatchError
	if !errors.As(err, &be) || ferry.IsPermanent(be.Failed(0)) || !strings.Contains(be.Failed(0).Error(), "ThrottlingException") {
		t.Fatalf("throttled Write = %v", err)
	}
	if err := s.Write(context.Background(), conntest.Events(1, 1)); err != nil {
		t.Fatalf("after throttling: %v", err)
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Detail, c.Source, c.Concurrency, c.Endpoint, c.AccessKeyID = "all", "aws.x", 0, "ftp://x", "AKID"
	c.Resources = "1 +"
	err := ferry.CheckConfig(c)
	for _, want := range []string{"region: is required", "detail: must be data or event", "source: must be", "concurrency",
		"endpoint: must be", "access_key_id and secret_access_key", "resources:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; missing %q", err, want)
		}
	}
}

// TestBinaryDataIsBase64InDetail: bytes that are not text reach the bus
// base64-encoded in detail.data_base64, never altered (no U+FFFD).
func TestBinaryDataIsBase64InDetail(t *testing.T) {
	f, url := fake(t)
	s := newSink(t, url, nil)
	raw := []byte{0xff, 0x00, 'a', 0xe9, 0x80}
	e := conntest.Events(1, 1)[0]
	_ = e.SetData("application/octet-stream", raw)
	if err := s.Write(context.Background(), []*event.Event{e}); err != nil {
		t.Fatal(err)
	}
	var detail struct {
		DataBase64 []byte `json:"data_base64"`
	}
	got := f.Accepted()[0].Detail
	if err := json.Unmarshal([]byte(got), &detail); err != nil || string(detail.DataBase64) != string(raw) {
		t.Fatalf("detail %s: %v; want data_base64 of %x", got, err, raw)
	}
}

// TestDetailEventIsAValidCloudEvent: with detail: event, every Detail,
// awkward keys and binary data included, is a valid CloudEvent for the
// JavaScript SDK (schema-validated), data bytes intact.
func TestDetailEventIsAValidCloudEvent(t *testing.T) {
	nodece.Require(t)
	f, url := fake(t)
	s := newSink(t, url, func(c *Config) { c.Detail = "event" })
	events := conntest.AwkwardEvents()
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*event.Event{}
	for _, e := range events {
		byID[e.ID()] = e
	}
	var reqs []nodece.Request
	for _, en := range f.Accepted() {
		reqs = append(reqs, nodece.Request{Headers: map[string]string{"content-type": "application/cloudevents+json"}, Body: []byte(en.Detail)})
	}
	got := nodece.Decode(t, reqs)
	if len(got) != len(events) {
		t.Fatalf("JavaScript SDK decoded %d events, want %d", len(got), len(events))
	}
	for _, g := range got {
		want := byID[g.ID]
		if want == nil || g.Subject != want.Subject() || want.DataBase64 && string(g.Data) != string(want.Data()) {
			t.Errorf("decoded %+v, want %v", g, want)
		}
	}
}

// TestNoCallAfterTheWriteContextEnded: a lane makes its calls one after
// another; once the Write's context says it is over, by Err alone (a
// frozen HA leader resumes past its deadline before its timer runs), no
// further call is made and the events not sent fail.
func TestNoCallAfterTheWriteContextEnded(t *testing.T) {
	f := ebfake.New()
	ctx := conntest.NewClockCtx()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.ServeHTTP(w, r)
		ctx.Expire() // the deadline passes while the first call is answered
	}))
	defer srv.Close()
	s := newSink(t, srv.URL, func(c *Config) { c.Concurrency = 1 })
	err := s.Write(ctx, conntest.Events(25, 25)) // three calls: 10+10+5
	if f.Calls() != 1 || len(f.Accepted()) != 10 {
		t.Fatalf("after the context ended: %d calls, %d accepted; want only the first call's 10", f.Calls(), len(f.Accepted()))
	}
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Len() != 15 {
		t.Fatalf("Write = %v, want the 15 events not sent failed", err)
	}
}
