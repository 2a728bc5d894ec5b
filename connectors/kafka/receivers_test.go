package kafka

import (
	"bytes"
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
)

// TestStructuredRecordsForTheJavaScriptSDK: in structured mode every record
// value, awkward keys and binary data included, is a valid CloudEvent for
// the JavaScript SDK (schema-validated), data bytes intact; the record key
// is the ordering key, byte for byte.
func TestStructuredRecordsForTheJavaScriptSDK(t *testing.T) {
	nodece.Require(t)
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	s := newSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Mode = "structured" })
	events := conntest.AwkwardEvents()
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	recs := consume(t, c.ListenAddrs(), "orders")
	if len(recs) != len(events) {
		t.Fatalf("%d records, want %d", len(recs), len(events))
	}
	var reqs []nodece.Request
	for i, r := range recs {
		if string(r.Key) != ferry.OrderingKey(events[i]) {
			t.Errorf("record %d key %q, want %q", i, r.Key, ferry.OrderingKey(events[i]))
		}
		reqs = append(reqs, nodece.Request{Headers: map[string]string{"content-type": "application/cloudevents+json"}, Body: r.Value})
	}
	for i, g := range nodece.Decode(t, reqs) {
		want := events[i]
		if g.ID != want.ID() || g.Subject != want.Subject() {
			t.Errorf("record %d: %+v, want subject %q", i, g, want.Subject())
		}
		if want.DataBase64 && !bytes.Equal(g.Data, want.Data()) {
			t.Errorf("record %d: data %q, want %q", i, g.Data, want.Data())
		}
	}
}
