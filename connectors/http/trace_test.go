package httpsink

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

const (
	eventTP    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	deliveryTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
	otherTP    = "00-11111111111111111111111111111111-2222222222222222-01"
)

type span struct{}

func (span) Header() (string, string) { return deliveryTP, "v=2" }
func (span) End(int, error)           {}

func traced(tps ...string) []*event.Event {
	evs := conntest.Events(len(tps), 1) // one key: one lane, in order
	for i, tp := range tps {
		if tp != "" {
			evs[i].SetExtension("traceparent", tp)
			evs[i].SetExtension("tracestate", "v=1")
		}
	}
	return evs
}

// Every mode sends the W3C headers: the event's own traceparent, or its
// delivery span's when the pipeline traces; binary mode keeps the
// extension in ce-traceparent.
func TestTraceHeadersPerEvent(t *testing.T) {
	for _, mode := range []string{ModeBinary, ModeStructured} {
		t.Run(mode, func(t *testing.T) {
			r := receiver.New()
			s, _ := newSink(t, r.Start(t), func(c *Config) { c.Mode = mode })
			ctx := tracectx.WithSpans(context.Background(), []tracectx.Span{nil, span{}, nil})
			if err := s.Write(ctx, traced(eventTP, eventTP, "")); err != nil {
				t.Fatal(err)
			}
			want := [][3]string{{eventTP, "v=1", eventTP}, {deliveryTP, "v=2", eventTP}, {"", "", ""}}
			reqs := r.Requests()
			for i, w := range want {
				h := reqs[i].Header
				got := [3]string{h.Get("Traceparent"), h.Get("Tracestate"), h.Get("Ce-Traceparent")}
				if mode == ModeStructured {
					w[2] = "" // the extension is in the body
				}
				if got != w {
					t.Errorf("request %d: %q, want %q", i, got, w)
				}
			}
		})
	}
}

// A batch request carries a traceparent only when all its events are in
// one trace: the first event's.
func TestBatchTraceHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		tps  []string
		want string
	}{
		{"one trace", []string{eventTP, eventTP}, eventTP},
		{"two traces", []string{eventTP, otherTP}, ""},
		{"one untraced", []string{eventTP, ""}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := receiver.New()
			s, _ := newSink(t, r.Start(t), func(cfg *Config) { cfg.Mode = ModeBatch })
			if err := s.Write(context.Background(), traced(c.tps...)); err != nil {
				t.Fatal(err)
			}
			if reqs := r.Requests(); len(reqs) != 1 || reqs[0].Header.Get("Traceparent") != c.want {
				t.Fatalf("%d requests, traceparent %q", len(reqs), reqs[0].Header.Get("Traceparent"))
			}
		})
	}
}
