package app

import (
	"testing"

	"github.com/ferry-cdc/ferry"
)

// TestRegistryLists: each registered type has one name, a configuration
// whose ferry tags parse, and the finite modes its spec declares.
func TestRegistryLists(t *testing.T) {
	if len(sourceTypes) != len(sources) || len(sinkTypes) != len(sinks) {
		t.Fatalf("two connectors share a type name: %d sources for %d names, %d sinks for %d names",
			len(sources), len(sourceTypes), len(sinks), len(sinkTypes))
	}
	for name, st := range sourceTypes {
		if err := ferry.CheckTags(st.NewConfig()); err != nil {
			t.Errorf("source %s: %v", name, err)
		}
		if (st.backfill != nil) != st.CanBackfill() || (st.replay != nil) != st.CanReplay() {
			t.Errorf("source %s: finite modes do not follow its spec", name)
		}
	}
	for name, st := range sinkTypes {
		if err := ferry.CheckTags(st.NewConfig()); err != nil {
			t.Errorf("sink %s: %v", name, err)
		}
	}
	if m := sourceTypes["mysql"]; m.backfill == nil || m.replay == nil || m.Codec() == nil {
		t.Error("mysql lost its backfill, replay or position codec")
	}
	if w := sourceTypes["webhook"]; w.backfill != nil || w.replay != nil || w.Codec() != nil {
		t.Error("webhook has finite modes or positions it does not declare")
	}
}

// TestBuildChecksTheConfigType: a spec given another type's configuration
// fails with an error, not a panic.
func TestBuildChecksTheConfigType(t *testing.T) {
	_, err := sinkTypes["nats"].build("x", sinkTypes["kafka"].NewConfig(), nil)
	if err == nil {
		t.Fatal("the nats sink built from a kafka configuration")
	}
}
