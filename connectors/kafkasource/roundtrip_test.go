package kafkasource

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/connectors/kafka"
)

// TestSinkToSourceRoundTrip: what Ferry's Kafka sink writes, in binary
// and in structured mode, comes out of the Kafka source as the same
// CloudEvents: attributes, extensions and data bytes, awkward ones too.
func TestSinkToSourceRoundTrip(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			c := cluster(t, kfake.SeedTopics(3, "orders"))
			cfg := kafka.DefaultConfig()
			cfg.Brokers, cfg.Topic, cfg.Mode, cfg.Timeout = c.ListenAddrs(), "orders", mode, 10*time.Second
			sink, err := kafka.New("bus", cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sink.Close(context.Background()) }()
			sent := conntest.Events(6, 3)
			for i, e := range conntest.AwkwardEvents() {
				e.SetID("awkward-" + string(rune('a'+i)))
				sent = append(sent, e)
			}
			if err := sink.Write(context.Background(), sent); err != nil {
				t.Fatalf("Write = %v", err)
			}
			s := newSource(t, c.ListenAddrs(), nil)
			openSource(t, s, nil)
			byID := map[string]*event.Event{}
			for _, ch := range readN(t, s, len(sent), true) {
				if ch.Invalid != nil || ch.Request.Event == nil {
					t.Fatalf("record %s did not decode: %v", ch.ID, ch.Invalid)
				}
				byID[ch.Request.Event.ID()] = ch.Request.Event
			}
			for _, want := range sent {
				got, ok := byID[want.ID()]
				if !ok {
					t.Fatalf("event %s not read back", want.ID())
				}
				if got.Source() != want.Source() || got.Type() != want.Type() || got.Subject() != want.Subject() ||
					!got.Time().Equal(want.Time()) || got.DataContentType() != want.DataContentType() ||
					!bytes.Equal(got.Data(), want.Data()) || conntest.PartitionKey(got) != conntest.PartitionKey(want) {
					t.Fatalf("%s mode: sent\n%v\nread back\n%v", mode, want, got)
				}
			}
		})
	}
}
