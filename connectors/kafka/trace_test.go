package kafka

import (
	"context"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

const (
	eventTP    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	deliveryTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
)

type span struct{}

func (span) Header() (string, string) { return deliveryTP, "v=2" }
func (span) End(int, error)           {}

// Records carry the W3C traceparent/tracestate headers in both modes: the
// event's own, or its delivery span's when the pipeline traces; binary
// mode also keeps the extension as ce_traceparent.
func TestTraceHeaders(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			c := cluster(t)
			s := newSink(t, clientFranz, c.ListenAddrs(), func(cfg *Config) { cfg.Mode = mode })
			evs := conntest.Events(3, 3)
			for _, e := range evs[:2] {
				e.SetExtension("traceparent", eventTP)
				e.SetExtension("tracestate", "v=1")
			}
			ctx := tracectx.WithSpans(context.Background(), []tracectx.Span{nil, span{}, nil})
			if err := s.Write(ctx, evs); err != nil {
				t.Fatal(err)
			}
			want := map[string][2]string{evs[0].ID(): {eventTP, "v=1"}, evs[1].ID(): {deliveryTP, "v=2"}, evs[2].ID(): {"", ""}}
			for _, r := range consume(t, c.ListenAddrs(), "orders") {
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				e := toEvent(t, r)
				w := want[e.ID()]
				if h["traceparent"] != w[0] || h["tracestate"] != w[1] {
					t.Errorf("%s: headers %v, want %v", e.ID(), h, w)
				}
				if mode == "binary" && e.ID() != evs[2].ID() && h["ce_traceparent"] != eventTP {
					t.Errorf("%s: ce_traceparent %q, want the event's own", e.ID(), h["ce_traceparent"])
				}
				if ext, _ := e.Extensions()["traceparent"].(string); e.ID() != evs[2].ID() && ext != eventTP {
					t.Errorf("%s: the event's extension changed to %q", e.ID(), ext)
				}
				delete(want, e.ID())
			}
			if len(want) != 0 {
				t.Fatalf("records missing: %v", want)
			}
		})
	}
}
