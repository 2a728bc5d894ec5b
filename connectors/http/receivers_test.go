package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// capture serves r (which decodes with the CloudEvents Go SDK) and keeps
// every raw request for other receivers.
func capture(t *testing.T, r *receiver.Receiver) (string, func() []nodece.Request) {
	var mu sync.Mutex
	var reqs []nodece.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		reqs = append(reqs, nodece.Capture(req, body))
		mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		r.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/events", func() []nodece.Request {
		mu.Lock()
		defer mu.Unlock()
		return append([]nodece.Request(nil), reqs...)
	}
}

// TestIndependentReceivers: in every mode, the events with awkward keys
// and binary data reach two CloudEvents SDKs Ferry did not write, the Go
// SDK and the JavaScript SDK (which validates against the spec's schema),
// with every attribute and every data byte intact. Binary-mode headers are
// percent-decoded as the HTTP binding says (neither SDK does it: the test
// receiver and receive.js do).
func TestIndependentReceivers(t *testing.T) {
	nodece.Require(t)
	for _, mode := range []string{ModeBinary, ModeStructured, ModeBatch} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			u, captured := capture(t, r)
			s, _ := newSink(t, u, func(c *Config) { c.Mode, c.Concurrency = mode, 1 })
			events := conntest.AwkwardEvents()
			if err := s.Write(context.Background(), events); err != nil {
				t.Fatal(err)
			}
			goEvents := r.Events()
			if len(goEvents) != len(events) {
				t.Fatalf("Go SDK decoded %d events, want %d", len(goEvents), len(events))
			}
			for i, g := range goEvents {
				checkDecoded(t, "Go SDK", events[i], decodedOf(g))
			}
			jsEvents := nodece.Decode(t, captured())
			if len(jsEvents) != len(events) {
				t.Fatalf("JavaScript SDK decoded %d events, want %d", len(jsEvents), len(events))
			}
			for i, j := range jsEvents {
				checkDecoded(t, "JavaScript SDK", events[i], j)
			}
		})
	}
}

// decodedOf turns a Go SDK event into the comparable form (the receiver
// percent-decodes binary-mode headers before the SDK parses them).
func decodedOf(e event.Event) nodece.Event {
	pk, _ := e.Extensions()["partitionkey"].(string)
	return nodece.Event{ID: e.ID(), Source: e.Source(), Type: e.Type(), Subject: e.Subject(),
		PartitionKey: pk, DataContentType: e.DataContentType(), Data: e.Data()}
}

func checkDecoded(t *testing.T, who string, want *event.Event, got nodece.Event) {
	t.Helper()
	pk, _ := want.Extensions()["partitionkey"].(string)
	wantSubject := want.Subject()
	if who == "Go SDK" && got.Subject == strings.TrimSpace(wantSubject) {
		// The Go SDK's SetSubject, which its binary-mode reader uses,
		// trims white space (U+0085 included); the wire carries it.
		wantSubject = got.Subject
	}
	switch {
	case got.ID != want.ID() || got.Type != want.Type() || got.Source != want.Source():
		t.Errorf("%s: event %q %q %q, want %q %q %q", who, got.ID, got.Type, got.Source, want.ID(), want.Type(), want.Source())
	case got.Subject != wantSubject || got.PartitionKey != pk:
		t.Errorf("%s: event %s subject %q partitionkey %q, want %q %q", who, want.ID(), got.Subject, got.PartitionKey, wantSubject, pk)
	case got.DataContentType != want.DataContentType():
		t.Errorf("%s: event %s datacontenttype %q, want %q", who, want.ID(), got.DataContentType, want.DataContentType())
	case !sameData(want.DataContentType(), got.Data, want.Data()):
		t.Errorf("%s: event %s data %q, want %q", who, want.ID(), got.Data, want.Data())
	}
}

// sameData compares JSON semantically (a JSON parser may re-serialize it),
// anything else byte for byte.
func sameData(contentType string, got, want []byte) bool {
	if contentType == event.ApplicationJSON {
		var a, b any
		return json.Unmarshal(got, &a) == nil && json.Unmarshal(want, &b) == nil && jsonEqual(a, b)
	}
	return bytes.Equal(got, want)
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
