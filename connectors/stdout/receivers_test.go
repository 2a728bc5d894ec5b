package stdout

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
)

// TestLinesAreValidCloudEventsForTheJavaScriptSDK: every line, awkward keys
// and binary data included, is valid JSON and a valid structured CloudEvent
// for the JavaScript SDK (which validates against the spec's schema), with
// the data bytes intact (binary data as data_base64).
func TestLinesAreValidCloudEventsForTheJavaScriptSDK(t *testing.T) {
	nodece.Require(t)
	var out bytes.Buffer
	s, err := NewWithWriter("console", nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := conntest.AwkwardEvents()
	if err := s.Write(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	var reqs []nodece.Request
	for _, line := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("line is not valid JSON: %q", line)
		}
		reqs = append(reqs, nodece.Request{Headers: map[string]string{"content-type": "application/cloudevents+json"}, Body: line})
	}
	got := nodece.Decode(t, reqs)
	if len(got) != len(events) {
		t.Fatalf("JavaScript SDK decoded %d events, want %d", len(got), len(events))
	}
	for i, g := range got {
		want := events[i]
		pk, _ := want.Extensions()["partitionkey"].(string)
		if g.ID != want.ID() || g.Subject != want.Subject() || g.PartitionKey != pk {
			t.Errorf("event %d: %+v, want subject %q partitionkey %q", i, g, want.Subject(), pk)
		}
		if want.DataBase64 && !bytes.Equal(g.Data, want.Data()) {
			t.Errorf("event %d: data %q, want %q", i, g.Data, want.Data())
		}
	}
}
