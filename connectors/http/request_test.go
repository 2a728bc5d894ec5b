package httpsink

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func TestRequestValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want map[string]string // field -> part of the reason; empty: valid
	}{
		{"full block", func(c *Config) {
			c.Request = RequestConfig{URL: `"https://crm.internal/api/customers/" + event.subject`,
				Headers: map[string]string{"X-Customer": "string(data.id)"}, Body: `{"customerId": data.id, "op": event.type}`,
				ContentType: "application/vnd.crm+json", CloudEventsHeaders: true}
			c.RateLimit = RateLimitConfig{RequestsPerSecond: 20, Burst: 5}
		}, nil},
		{"string and bytes bodies", func(c *Config) { c.Request.Body = `"id=" + id` }, nil},
		{"helpers of the rules", func(c *Config) { c.Request.Body = `pick(data, ["id"])` }, nil},
		{"url only, structured", func(c *Config) { c.Mode, c.Request.URL = ModeStructured, `"http://h/" + type` }, nil},
		{"undeclared variable", func(c *Config) { c.Request.Body = `{"id": dat.id}` },
			map[string]string{"request.body": "undeclared reference to 'dat' (line 1, column 8 of the expression)"}},
		{"secrets are not echoed", func(c *Config) { c.Request.Headers = map[string]string{"Authorization": `"Bearer s3cr3t" + tok`} },
			map[string]string{"request.headers.Authorization": "undeclared reference to 'tok'"}},
		{"syntax error", func(c *Config) { c.Request.URL = `"http://h/" +` }, map[string]string{"request.url": "Syntax error"}},
		{"url of the wrong type", func(c *Config) { c.Request.URL = `42` }, map[string]string{"request.url": "evaluates to int, want string"}},
		{"header of the wrong type", func(c *Config) { c.Request.Headers = map[string]string{"X-N": "1 == 1"} },
			map[string]string{"request.headers.X-N": "evaluates to bool"}},
		{"now is not deterministic", func(c *Config) { c.Request.Body = `{"at": now()}` },
			map[string]string{"request.body": "undeclared reference to 'now'"}},
		{"batch", func(c *Config) { c.Mode, c.Request.Body = ModeBatch, "data" }, map[string]string{"request": "batch mode"}},
		{"structured body", func(c *Config) { c.Mode, c.Request.Body = ModeStructured, "data" }, map[string]string{"request.body": "mode binary"}},
		{"content type without body", func(c *Config) { c.Request.ContentType = "text/xml" }, map[string]string{"request.content_type": "request.body is not"}},
		{"bad content type", func(c *Config) { c.Request.Body, c.Request.ContentType = "data", "json" }, map[string]string{"request.content_type": "not a media type"}},
		{"no ce headers without body", func(c *Config) { c.Request.CloudEventsHeaders = false }, map[string]string{"request.cloudevents_headers": "only with request.body"}},
		{"reserved header", func(c *Config) { c.Request.Headers = map[string]string{"content-type": `"x"`, "ce-id": `"x"`} },
			map[string]string{"request.headers.content-type": "request.content_type", "request.headers.ce-id": "managed by the sink"}},
		{"header set twice", func(c *Config) {
			c.Headers = map[string]ferry.Secret{"x-tenant": "a"}
			c.Request.Headers = map[string]string{"X-Tenant": `"b"`}
		}, map[string]string{"request.headers.X-Tenant": "headers.X-Tenant"}},
		{"bad header name", func(c *Config) { c.Request.Headers = map[string]string{"X Y": `"b"`} }, map[string]string{"request.headers.X Y": "not a valid header name"}},
		{"rate limit", func(c *Config) { c.RateLimit = RateLimitConfig{RequestsPerSecond: -1, Burst: 0} },
			map[string]string{"rate_limit.requests_per_second": "negative", "rate_limit.burst": "at least 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.URL = "http://legacy.internal/in"
			c.mut(cfg)
			err := ferry.CheckConfig(cfg)
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("%v quotes the expression", err)
			}
			got := fieldErrors(t, err)
			for field, part := range c.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("%s: got %q, want it to say %q (all: %v)", field, got[field], part, got)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("errors %v, want %d", got, len(c.want))
			}
			if _, err := New("crm", cfg, nil); (err == nil) != (len(c.want) == 0) {
				t.Errorf("New = %v", err)
			}
		})
	}
}

// crmEvent is an event whose data is the given JSON text.
func crmEvent(id, subject, data string) *event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/ferry/shop")
	e.SetType("com.example.customer.updated")
	e.SetTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	if subject != "" {
		e.SetSubject(subject)
	}
	e.SetExtension("tenant", "acme")
	_ = e.SetData(event.ApplicationJSON, []byte(data))
	return &e
}

func TestShapeEvaluates(t *testing.T) {
	ev := crmEvent("e-1", "c-9", `{"id":9007199254740993,"name":"Zoë","tags":["a","b"],"score":1.5,"vip":true,"note":null}`)
	cases := []struct {
		name      string
		req       RequestConfig
		url, body string
		ctype     string
		header    []string
		err       string // part of the error; "" means none
	}{
		{name: "json map, keys sorted, big ints exact (as strings beyond 2^53, as rules write them)",
			req:  RequestConfig{Body: `{"op": event.type, "customerId": data.id, "tenant": event.tenant, "at": event.time}`},
			body: `{"at":"2026-12-02T10:00:00Z","customerId":"9007199254740993","op":"com.example.customer.updated","tenant":"acme"}`, ctype: "application/json"},
		{name: "list", req: RequestConfig{Body: `data.tags`}, body: `["a","b"]`, ctype: "application/json"},
		{name: "string", req: RequestConfig{Body: `"<name>" + data.name + "</name>"`}, body: `<name>Zoë</name>`, ctype: "text/plain; charset=utf-8"},
		{name: "bytes", req: RequestConfig{Body: `b"\x00\x01"`}, body: "\x00\x01", ctype: "application/octet-stream"},
		{name: "configured type", req: RequestConfig{Body: `"<a/>"`, ContentType: "text/xml"}, body: `<a/>`, ctype: "text/xml"},
		{name: "number", req: RequestConfig{Body: `data.score`}, body: `1.5`, ctype: "application/json"},
		{name: "helpers", req: RequestConfig{Body: `rename(pick(data, ["id", "vip"]), {"id": "customer_id"})`},
			body: `{"customer_id":"9007199254740993","vip":true}`, ctype: "application/json"},
		{name: "url and headers", req: RequestConfig{URL: `"https://crm.internal/api/customers/" + event.subject`,
			Headers: map[string]string{"x-customer": "string(data.id)", "X-Empty": `""`}},
			url: "https://crm.internal/api/customers/c-9", header: []string{"X-Customer", "9007199254740993"}},
		{name: "missing field", req: RequestConfig{Body: `{"x": data.missing}`}, err: "request.body: no such key: missing"},
		{name: "wrong type", req: RequestConfig{Body: `data.name + 1`}, err: "request.body: no such overload"},
		{name: "null body", req: RequestConfig{Body: `data.note`}, err: "request.body: gave null"},
		{name: "null header", req: RequestConfig{Headers: map[string]string{"X-Note": "data.note"}}, err: "request.headers.X-Note: gave null, want a string"},
		{name: "header not a string", req: RequestConfig{Headers: map[string]string{"X-Id": "data.id"}}, err: "request.headers.X-Id: gave a int, want a string"},
		{name: "header injection", req: RequestConfig{Headers: map[string]string{"X-Name": `data.name + "\r\nX-Admin: 1"`}},
			err: "request.headers.X-Name: holds a line break"},
		{name: "header control character", req: RequestConfig{Headers: map[string]string{"X-Name": `"a\x07"`}},
			err: "request.headers.X-Name: holds a control character"},
		{name: "url not http", req: RequestConfig{URL: `"ftp://crm/" + event.subject`}, err: `request.url: gave "ftp://crm/c-9", not an absolute http`},
		{name: "url relative", req: RequestConfig{URL: `"/customers/" + event.subject`}, err: "not an absolute http"},
		{name: "absent subject", req: RequestConfig{URL: `"https://crm/" + event.dataschema`}, err: "no such key: dataschema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.CloudEventsHeaders = true
			sh, errs := c.req.compile()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			got, err := sh.build(ev)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !ferry.IsPermanent(err) || !strings.Contains(err.Error(), "event e-1") {
					t.Fatalf("build = %v, want a permanent error for event e-1 saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.body) != c.body || got.ctype != c.ctype {
				t.Errorf("body %q (%s), want %q (%s)", got.body, got.ctype, c.body, c.ctype)
			}
			if u := got.endpoint(nil); (u == nil && c.url != "") || (u != nil && u.String() != c.url) {
				t.Errorf("url %v, want %q", u, c.url)
			}
			if strings.Join(got.header, "|") != strings.Join(c.header, "|") {
				t.Errorf("headers %q, want %q", got.header, c.header)
			}
			again, _ := sh.build(ev)
			if string(again.body) != string(got.body) {
				t.Errorf("a second build gave %q, then %q: a retry would send other bytes", got.body, again.body)
			}
		})
	}
}

// bodyServer answers 200 (or fail for the first fail requests) and
// keeps every request's path, headers and body.
type bodyServer struct {
	mu      sync.Mutex
	fail    int
	discard bool // keep nothing (benchmarks)
	reqs    []recorded
}

type recorded struct {
	path   string
	header http.Header
	body   string
}

func (rs *bodyServer) start(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rs.mu.Lock()
		if !rs.discard {
			rs.reqs = append(rs.reqs, recorded{r.URL.Path, r.Header.Clone(), string(b)})
		}
		failing := rs.fail > 0
		rs.fail--
		rs.mu.Unlock()
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (rs *bodyServer) requests() []recorded {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]recorded(nil), rs.reqs...)
}

func TestShapedRequestsRouteToTheirEndpoints(t *testing.T) {
	var eu, us bodyServer
	euURL, usURL := eu.start(t), us.start(t)
	s, _ := newSink(t, euURL, func(c *Config) {
		c.Concurrency = 4
		c.Request = RequestConfig{
			URL:     `(data.region == "eu" ? "` + euURL + `" : "` + usURL + `") + "/customers/" + event.subject`,
			Headers: map[string]string{"X-Customer": "event.subject"}, Body: `{"customerId": data.id, "op": event.type}`,
			CloudEventsHeaders: true}
	})
	events := []*event.Event{
		crmEvent("e-1", "c-1", `{"id":1,"region":"eu"}`),
		crmEvent("e-2", "c-2", `{"id":2,"region":"us"}`),
		crmEvent("e-3", "c-3", `{"region":"eu"}`), // no id: dead-lettered alone
		crmEvent("e-4", "c-1", `{"id":1,"region":"eu"}`),
		crmEvent("e-5", "c-5", `{"id":5,"region":"us"}`),
	}
	err := s.Write(context.Background(), events)
	if e3 := eventErr(t, err, 2); !ferry.IsPermanent(e3) || !strings.Contains(e3.Error(), "request.body: no such key: id") {
		t.Errorf("e-3: %v", e3)
	}
	var be *ferry.BatchError
	if errors.As(err, &be) && be.Len() != 1 {
		t.Errorf("%d events failed, want only e-3: %v", be.Len(), err)
	}
	want := map[*bodyServer][]string{
		&eu: {"/customers/c-1 c-1 {\"customerId\":1,\"op\":\"com.example.customer.updated\"}",
			"/customers/c-1 c-1 {\"customerId\":1,\"op\":\"com.example.customer.updated\"}"},
		&us: {"/customers/c-2 c-2 {\"customerId\":2,\"op\":\"com.example.customer.updated\"}",
			"/customers/c-5 c-5 {\"customerId\":5,\"op\":\"com.example.customer.updated\"}"},
	}
	for rs, lines := range want {
		var got []string
		for _, r := range rs.requests() {
			got = append(got, r.path+" "+r.header.Get("X-Customer")+" "+r.body)
			if r.header.Get("Content-Type") != "application/json" || r.header.Get("Ce-Specversion") != "1.0" || r.header.Get("Ce-Tenant") != "acme" {
				t.Errorf("headers %v: want application/json and the ce-* attributes", r.header)
			}
		}
		if len(got) != len(lines) {
			t.Fatalf("got %q, want %q", got, lines)
		}
		for _, l := range lines {
			if !containsLine(got, l) {
				t.Errorf("got %q, want %q among them", got, l)
			}
		}
	}
}

func containsLine(lines []string, l string) bool {
	for _, x := range lines {
		if x == l {
			return true
		}
	}
	return false
}

func TestPlainRequestAndRetriedBodies(t *testing.T) {
	rs := bodyServer{fail: 1}
	url := rs.start(t)
	s, _ := newSink(t, url, func(c *Config) {
		c.Request = RequestConfig{Body: `{"customer": data, "id": id, "tags": {"b": 2, "a": 1, "c": 3}}`, CloudEventsHeaders: false}
	})
	events := []*event.Event{crmEvent("e-1", "c-1", `{"name":"Zoë","id":7}`)}
	if err := s.Write(context.Background(), events); err == nil || ferry.IsPermanent(eventErr(t, err, 0)) {
		t.Fatalf("Write = %v, want a transient failure (503)", err)
	}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	reqs := rs.requests()
	const want = `{"customer":{"id":7,"name":"Zoë"},"id":"e-1","tags":{"a":1,"b":2,"c":3}}`
	if len(reqs) != 2 || reqs[0].body != want || reqs[1].body != want {
		t.Fatalf("bodies %+v, want %s twice", reqs, want)
	}
	for name := range reqs[1].header {
		if strings.HasPrefix(name, "Ce-") {
			t.Errorf("header %s sent with cloudevents_headers: false", name)
		}
	}
	if got := reqs[1].header.Get("Content-Length"); got != strconv.Itoa(len(want)) {
		t.Errorf("Content-Length %s", got)
	}
}

// TestAcceptanceWithRequestBlock runs the acceptance suite with every key
// of the request block and a rate limit: the body expression rebuilds the
// conntest data byte for byte, so the suite's checks hold.
func TestAcceptanceWithRequestBlock(t *testing.T) {
	r := receiver.New()
	url := r.Start(t)
	conntest.RunSink(t, receiverHarness(r, func(cfg *Config) {
		cfg.URL = "http://unused.invalid/"
		cfg.Request = RequestConfig{URL: `"` + url + `/keys/" + subject`, Headers: map[string]string{"X-Key": "event.partitionkey"},
			Body: `{"key": data.key, "n": data.n, "text": data.text}`, CloudEventsHeaders: true}
		cfg.RateLimit = RateLimitConfig{RequestsPerSecond: 100000, Burst: 1000}
	}))
	for _, a := range r.Arrivals() {
		if !strings.HasSuffix(a.Path, "/keys/"+a.Event.Subject()) {
			t.Fatalf("event %s arrived at %s", a.Event.ID(), a.Path)
		}
	}
}

// TestStructuredModeWithURLAndHeaders: without a body, the event goes in
// its mode's binding to the URL and with the headers the expressions give.
func TestStructuredModeWithURLAndHeaders(t *testing.T) {
	r := receiver.New()
	url := r.Start(t)
	s, _ := newSink(t, "http://unused.invalid/", func(c *Config) {
		c.Mode = ModeStructured
		c.Request = RequestConfig{URL: `"` + url + `/t/" + event.tenant`, Headers: map[string]string{"X-Subject": "subject"}, CloudEventsHeaders: true}
	})
	events := []*event.Event{crmEvent("e-1", "c-1", `{"id":1}`), crmEvent("e-2", "c-2", `{"id":2}`)}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	got := r.Arrivals()
	reqs := r.Requests()
	if len(got) != 2 || len(reqs) != 2 {
		t.Fatalf("%d events, %d requests", len(got), len(reqs))
	}
	for i, a := range got {
		req := reqs[i]
		if !strings.HasSuffix(a.Path, "/t/acme") || req.Header.Get("X-Subject") != a.Event.Subject() ||
			!strings.HasPrefix(req.Header.Get("Content-Type"), "application/cloudevents+json") || string(a.Event.Data()) != string(events[0].Data()) && string(a.Event.Data()) != string(events[1].Data()) {
			t.Errorf("event %s at %s, headers %v", a.Event.ID(), a.Path, req.Header)
		}
	}
}

// TestErrorsNameTheEventsURL: a request to the URL an expression gave is
// named by that URL when it fails, not by the sink's url.
func TestErrorsNameTheEventsURL(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	rs := bodyServer{fail: 1}
	up := rs.start(t)
	s, _ := newSink(t, "http://sink.invalid/base", func(c *Config) {
		c.Request = RequestConfig{URL: `(event.subject == "down" ? "` + closed.URL + `" : "` + up + `") + "/x/" + event.subject + "?token=secret"`,
			CloudEventsHeaders: true}
	})
	err := s.Write(context.Background(), []*event.Event{crmEvent("e-1", "down", `{}`), crmEvent("e-2", "up", `{}`)})
	for i, want := range []string{closed.URL + "/x/down", up + "/x/up: 503"} {
		e := eventErr(t, err, i)
		if !strings.Contains(e.Error(), want) || strings.Contains(e.Error(), "sink.invalid") || strings.Contains(e.Error(), "secret") || ferry.IsPermanent(e) {
			t.Errorf("event %d: %v, want a transient error naming %s (without the query)", i, e, want)
		}
	}
}
