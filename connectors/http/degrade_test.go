package httpsink

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestFailureHoldsBackOnlyItsKeyInTheLane: with one lane, a failed event
// holds back the later events of its own key (not attempted) while the
// other keys of the lane are still sent.
func TestFailureHoldsBackOnlyItsKeyInTheLane(t *testing.T) {
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return e.ID() == "conntest-2" }, 503)
	s, _ := newSink(t, r.Start(t), func(c *Config) { c.Concurrency = 1 })
	events := conntest.Events(8, 2) // keys alternate: 0 1 0 1 ...
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Indexes(), []int{2, 4, 6}) {
		t.Fatalf("Write = %v, want events 2, 4 and 6 failed", err)
	}
	for _, i := range []int{4, 6} {
		if !ferry.IsNotAttempted(be.Failed(i)) {
			t.Errorf("event %d: %v, want not attempted", i, be.Failed(i))
		}
	}
	if r.Count() != 5 {
		t.Fatalf("received %d events, want 5 (0, 1, 3, 5, 7)", r.Count())
	}
}

// TestBatchRefusedAsTooLargeIsSplit: a 413 on a batch splits it in halves
// down to single events; only the event refused alone fails, permanently.
func TestBatchRefusedAsTooLargeIsSplit(t *testing.T) {
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return e.ID() == "conntest-5" }, 413)
	s, _ := newSink(t, r.Start(t), func(c *Config) { c.Mode, c.Concurrency = ModeBatch, 1 })
	events := conntest.Events(12, 12)
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) || !slices.Equal(be.Indexes(), []int{5}) || !ferry.IsPermanent(be.Failed(5)) || !isTooLarge(be.Failed(5)) {
		t.Fatalf("Write = %v, want only event 5 failed with a permanent 413", err)
	}
	if r.Count() != 11 {
		t.Fatalf("received %d events, want 11", r.Count())
	}
}

// awkwardValues are attribute values a receiver must get back exactly.
var awkwardValues = []string{"plain", "with space", `"quoted"`, "100%", "%41 is not A", "émoji 🚀", "tab\there", "nul\x00bell\x07", "del\x7f", "c1\u0085"}

// TestBinaryHeadersArePercentEncoded: in binary mode every ce-* value
// goes out percent-encoded per the HTTP binding, and decoding it per the
// binding (RFC 3986 percent-decoding of UTF-8) gives the original value.
func TestBinaryHeadersArePercentEncoded(t *testing.T) {
	r := receiver.New()
	s, _ := newSink(t, r.Start(t), func(c *Config) { c.Concurrency = 1 })
	events := conntest.Events(len(awkwardValues), len(awkwardValues))
	for i, v := range awkwardValues {
		// Set directly: the SDK's SetSubject trims white space, such as
		// U+0085; the transform sets attributes as they are.
		events[i].Context.(*event.EventContextV1).Subject = &v
		events[i].SetExtension("partitionkey", v)
	}
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	reqs := r.Requests()
	if len(reqs) != len(awkwardValues) {
		t.Fatalf("%d requests, want %d", len(reqs), len(awkwardValues))
	}
	for i, req := range reqs {
		for _, h := range []string{"Ce-Subject", "Ce-Partitionkey"} {
			raw := req.Header.Get(h)
			if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' }) {
				t.Errorf("%s %q: not percent-encoded", h, raw)
			}
			got, err := url.PathUnescape(raw)
			if err != nil || got != awkwardValues[i] {
				t.Errorf("%s %q decodes to %q (%v), want %q", h, raw, got, err, awkwardValues[i])
			}
		}
	}
}
