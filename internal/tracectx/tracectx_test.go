package tracectx

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{tp, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true}, // later versions may grow
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false},     // version 00 may not
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false}, // uppercase
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"", false},
	} {
		if got := Valid(c.in); got != c.want {
			t.Errorf("Valid(%q) = %v", c.in, got)
		}
	}
}

func TestXRay(t *testing.T) {
	if got := XRay(tp); got != "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" {
		t.Fatal(got)
	}
	if got := XRay(strings.Replace(tp, "-01", "-02", 1)); !strings.HasSuffix(got, ";Sampled=0") {
		t.Fatal(got)
	}
	if got := XRay(strings.Replace(tp, "-01", "-0b", 1)); !strings.HasSuffix(got, ";Sampled=1") {
		t.Fatal(got)
	}
	if XRay("junk") != "" {
		t.Fatal("an invalid traceparent converted")
	}
}

type span struct{ h string }

func (s span) Header() (string, string) { return s.h, "s=1" }
func (span) End(int, error)             {}

func TestLookup(t *testing.T) {
	traced := event.New()
	traced.SetExtension("traceparent", tp)
	traced.SetExtension("tracestate", "v=1")
	bad := event.New()
	bad.SetExtension("traceparent", "garbage")
	bad.SetExtension("tracestate", "v=1")
	plain := event.New()

	var none Lookup = FromContext(context.Background())
	if a, b := none.For(0, &traced); a != tp || b != "v=1" {
		t.Fatalf("own extension: %q %q", a, b)
	}
	if a, b := none.For(0, &bad); a != "" || b != "" {
		t.Fatalf("an invalid traceparent passed on: %q %q", a, b)
	}
	l := FromContext(WithSpans(context.Background(), []Span{nil, span{"override"}}))
	if a, _ := l.For(0, &traced); a != tp {
		t.Fatalf("no span at 0: %q", a)
	}
	if a, b := l.For(1, &plain); a != "override" || b != "s=1" {
		t.Fatalf("span at 1: %q %q", a, b)
	}
	if a, _ := l.For(5, &traced); a != tp {
		t.Fatalf("beyond the spans: %q", a)
	}
}

func TestValidState(t *testing.T) {
	if !ValidState("a=1,b=2") || ValidState("a=1\r\nX: y") || ValidState(strings.Repeat("a", 513)) {
		t.Fatal("ValidState")
	}
}

func FuzzValid(f *testing.F) {
	f.Add(tp)
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) {
			if TraceID(s) == "" || !strings.HasPrefix(XRay(s), "Root=1-") {
				t.Fatalf("valid %q but not usable", s)
			}
		}
	})
}
