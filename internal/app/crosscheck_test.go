package app

import (
	"strings"
	"testing"
)

// TestWebhookRouteClash: two webhook sources may share a listener but not
// a path on it; the second is refused at its path key, naming the first.
func TestWebhookRouteClash(t *testing.T) {
	const sinks = "sinks:\n  out: {type: stdout}\ndefaults: {to: [out]}\n"
	p, err := loadString(t, `sources:
  orders: {type: webhook, listen: "127.0.0.1:8099", path: /orders}
  refunds: {type: webhook, listen: "127.0.0.1:8099", path: /orders}
  other: {type: webhook, listen: "127.0.0.1:8099", path: /other}
`+sinks)
	if err == nil {
		t.Fatal("two sources serving one path loaded")
	}
	want := p + ":3:"
	if msg := err.Error(); !strings.Contains(msg, want) ||
		!strings.Contains(msg, "sources.refunds.path: source orders already serves /orders on 127.0.0.1:8099") ||
		strings.Contains(msg, "sources.other") {
		t.Fatalf("error = %q, want one clash at %s sources.refunds.path", msg, want)
	}
	if _, err := loadString(t, `sources:
  orders: {type: webhook, listen: "127.0.0.1:8099", path: /orders}
  refunds: {type: webhook, listen: "127.0.0.1:8099", path: /refunds}
`+sinks); err != nil {
		t.Fatalf("two paths on one listener: %v", err)
	}
}
