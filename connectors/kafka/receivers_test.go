package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
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
	eachClient(t, func(t *testing.T, client string) {
		nodece.Require(t)
		c := cluster(t, kfake.SeedTopics(1, "orders"))
		s := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.Mode = "structured" })
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
	})
}

// TestKcatReadsAwkwardKeys: kcat (librdkafka) reads, in binary mode, the
// record key and the ce_subject and ce_partitionkey headers of events whose
// keys hold spaces, quotes, "%", emoji and control characters, byte for byte
// (Kafka headers are bytes: no encoding applies), and the data bytes of
// JSON events.
func TestKcatReadsAwkwardKeys(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t, kfake.SeedTopics(1, "orders"))
		s := newSink(t, client, c.ListenAddrs(), nil)
		events := conntest.AwkwardEvents()
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		out, lines := kcatConsume(t, c.ListenAddrs()[0], "orders")
		if len(lines) != len(events) {
			t.Fatalf("kcat read %d messages, want %d:\n%s", len(lines), len(events), out)
		}
		for i, l := range lines {
			var m struct {
				Key     string   `json:"key"`
				Payload string   `json:"payload"`
				Headers []string `json:"headers"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("kcat line %q: %v", l, err)
			}
			h := map[string]string{}
			for k := 0; k+1 < len(m.Headers); k += 2 {
				h[m.Headers[k]] = m.Headers[k+1]
			}
			want := events[i]
			if m.Key != ferry.OrderingKey(want) || h["ce_subject"] != want.Subject() || h["ce_partitionkey"] != ferry.OrderingKey(want) ||
				h["ce_id"] != want.ID() {
				t.Errorf("message %d: key %q headers %q; want key and subject %q", i, m.Key, m.Headers, want.Subject())
			}
			if want.DataContentType() == "application/json" && m.Payload != string(want.Data()) {
				t.Errorf("message %d: payload %q, want %q", i, m.Payload, want.Data())
			}
		}
	})
}

// kcatConsume reads every record of topic with kcat (an independent
// librdkafka client) as JSON lines; kcat missing fails the test.
func kcatConsume(t *testing.T, broker, topic string) (out []byte, lines []string) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is required for this cross-check: apt-get install -y kcat (scripts/test.sh installs it)")
	}
	out, err = exec.Command(kcat, "-C", "-b", broker, "-t", topic, "-J", "-e", "-o", "beginning", "-q").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	return out, strings.Split(strings.TrimSpace(string(out)), "\n")
}
