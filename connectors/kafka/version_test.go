package kafka

import (
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry"
)

// TestVersionNegotiatesByDefault: without `version` the client caps
// nothing and negotiates with each broker; a set version still caps, and
// one older than the idempotent producer is refused.
func TestVersionNegotiatesByDefault(t *testing.T) {
	c := DefaultConfig()
	c.Brokers, c.Topic = []string{"127.0.0.1:9092"}, "t"
	if c.Version != "" {
		t.Fatalf("default version %q, want none (negotiate)", c.Version)
	}
	if err := ferry.CheckConfig(c); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if vs, _ := maxVersions(c.Version); vs != nil {
		t.Fatal("an empty version caps the protocol versions")
	}
	if vs, ok := maxVersions("2.8.0"); vs == nil || !ok {
		t.Fatal("version 2.8.0 no longer caps")
	}
	c.Version = "0.10.2"
	if err := ferry.CheckConfig(c); err == nil || !strings.Contains(err.Error(), "version: must be a Kafka version of 0.11.0 or later") {
		t.Fatalf("version 0.10.2: %v", err)
	}
}
