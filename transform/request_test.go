package transform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

func requestChange() *ferry.Change {
	return &ferry.Change{ID: "d-123", Op: ferry.OpRequest, Source: "crm", Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
		Request: &ferry.Request{Method: "POST", Path: "/hooks/crm", RemoteAddr: "10.0.0.7:5511",
			Header:      http.Header{"X-Tenant": {"acme"}, "Content-Type": {"application/json"}},
			Query:       url.Values{"v": {"2"}},
			ContentType: "application/json", Data: []byte(`{"order":{"id":42,"total":"9.50"},"event":"created"}`),
			Extensions: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}
}

func TestWebhookDefaultEvent(t *testing.T) {
	e := mustEngine(t, []string{"out"})
	out := e.NewWorker().Apply(requestChange(), nil)
	ev := out[0].Event
	if ev.ID() != "d-123" || ev.Source() != "/ferry/crm" || ev.Type() != "com.example.webhook.crm" || ev.Subject() != "" ||
		ev.DataContentType() != "application/json" || string(ev.Data()) != `{"order":{"id":42,"total":"9.50"},"event":"created"}` ||
		ev.Extensions()["traceparent"] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" || ev.Extensions()["partitionkey"] != nil {
		t.Fatalf("webhook event = %s", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
	text := requestChange()
	text.Request.ContentType, text.Request.Data = "text/plain; charset=utf-8", []byte("hello")
	ev = e.NewWorker().Apply(text, nil)[0].Event
	if ev.DataContentType() != "text/plain; charset=utf-8" || string(ev.Data()) != "hello" {
		t.Fatalf("text body event = %s", ev)
	}
}

func TestCloudEventPassesThroughUnchanged(t *testing.T) {
	in := event.New()
	in.SetID("upstream-1")
	in.SetSource("/legacy/erp")
	in.SetType("erp.invoice.paid")
	in.SetSubject("inv-9")
	in.SetTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	in.SetExtension("tenant", "acme")
	_ = in.SetData(event.ApplicationJSON, map[string]int{"amount": 10})
	c := requestChange()
	c.Request.Event = &in
	out := mustEngine(t, []string{"out"}).NewWorker().Apply(c, nil)
	got, _ := json.Marshal(out[0].Event)
	want, _ := json.Marshal(in)
	if !bytes.Equal(got, want) {
		t.Fatalf("pass-through changed the event:\n%s\n%s", got, want)
	}
}

func TestRulesOverRequests(t *testing.T) {
	e := mustEngine(t, nil, Rule{Name: "order", To: []string{"s"},
		When: `method == "POST" && path == "/hooks/crm" && body.event == "created"`,
		Event: EventExprs{Type: `"com.example.crm.order_" + body.event`, Subject: `string(body.order.id)`,
			Data:       `{"order_id": body.order.id, "tenant": headers["x-tenant"], "version": query.v, "from": remote}`,
			Extensions: map[string]string{"tenant": `headers["x-tenant"]`}}})
	out := e.NewWorker().Apply(requestChange(), nil)
	if len(out) != 1 || out[0].Err != nil {
		t.Fatalf("outputs = %+v", out)
	}
	ev := out[0].Event
	if ev.ID() != "d-123/order" || ev.Type() != "com.example.crm.order_created" || ev.Subject() != "42" ||
		string(ev.Data()) != `{"from":"10.0.0.7:5511","order_id":42,"tenant":"acme","version":"2"}` ||
		ev.Extensions()["traceparent"] == nil || ev.Extensions()["tenant"] != "acme" {
		t.Fatalf("event = %s", ev)
	}
	// Row rules see no request: a row rule on a request does not match.
	rowRule := mustEngine(t, nil, Rule{Name: "rows", When: `table == "orders"`, To: []string{"s"}})
	if out := rowRule.NewWorker().Apply(requestChange(), nil); len(out) != 0 {
		t.Fatalf("row rule matched a request: %+v", out)
	}
}

func TestRequestSampleRoundTrip(t *testing.T) {
	c := requestChange()
	line := AppendSample(nil, c)
	got, err := ParseSamples(bytes.NewReader(line), "")
	if err != nil {
		t.Fatal(err)
	}
	if again := AppendSample(nil, &got[0]); !bytes.Equal(again, line) {
		t.Fatalf("request sample round trip differs:\n%s\n%s", line, again)
	}
	hand := `{"source_name":"crm","request":{"path":"/h","headers":{"X-A":"1"},"body":{"x":1}}}`
	got, err = ParseSamples(bytes.NewReader([]byte(hand)), "")
	if err != nil || got[0].Op != ferry.OpRequest || got[0].Request.Method != "POST" || got[0].Request.Header.Get("X-A") != "1" ||
		string(got[0].Request.Data) != `{"x":1}` || got[0].Request.ContentType != "application/json" {
		t.Fatalf("hand-written request sample = %+v %v", got, err)
	}
}

// TestBinaryBodiesTravelAsDataBase64: a webhook body that is not text in
// its declared charset (octet-stream, ISO-8859-1) becomes data_base64 in
// the structured form, valid JSON holding the exact bytes; a UTF-8 text
// body stays a string.
func TestBinaryBodiesTravelAsDataBase64(t *testing.T) {
	e := mustEngine(t, []string{"out"})
	for _, c := range []struct {
		contentType string
		data        []byte
		base64      bool
	}{
		{"application/octet-stream", []byte{0, 0xff, 'x'}, true},
		{"text/plain; charset=iso-8859-1", []byte("caf\xe9"), true},
		{"text/plain; charset=utf-8", []byte("café"), false},
	} {
		ch := requestChange()
		ch.Request.ContentType, ch.Request.Data = c.contentType, c.data
		ev := e.NewWorker().Apply(ch, nil)[0].Event
		b, err := json.Marshal(ev)
		if err != nil || !json.Valid(b) || bytes.Contains(b, []byte(`"data_base64"`)) != c.base64 {
			t.Fatalf("%s: structured form %s (%v), want data_base64=%v", c.contentType, b, err, c.base64)
		}
		var back event.Event
		if err := json.Unmarshal(b, &back); err != nil || !bytes.Equal(back.Data(), c.data) {
			t.Fatalf("%s: data back %q (%v), want %q", c.contentType, back.Data(), err, c.data)
		}
	}
}
