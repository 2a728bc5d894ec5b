package integration

import (
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
)

// The Kafka checks read a topic to the ends its partitions have when the
// read starts (kafkatest.Consume), never until a poll comes back empty:
// on a loaded machine a fresh consumer's first fetches can take seconds,
// and a quiet spell read as the end of the topic made the counts flaky.

// readEvents reads every record of topic (read_uncommitted), partition by
// partition in offset order (so per key in produce order), as structured
// CloudEvents.
func readEvents(t *testing.T, addr, topic string) []event.Event {
	t.Helper()
	return structuredEvents(t, kafkatest.Consume(t, []string{addr}, topic))
}

// readCommittedEvents is readEvents with isolation.level=read_committed,
// up to the last stable offsets: what a transactional consumer sees.
func readCommittedEvents(t *testing.T, addr, topic string) []event.Event {
	t.Helper()
	return structuredEvents(t, kafkatest.ConsumeCommitted(t, []string{addr}, topic))
}

// someCommitted reports whether a read_committed consumer sees a record of
// topic yet.
func someCommitted(t *testing.T, addr, topic string) bool {
	t.Helper()
	return len(kafkatest.ConsumeCommitted(t, []string{addr}, topic)) > 0
}

// stableEnd sums the last stable offsets of topic's partitions: it grows
// with every transaction committed or aborted.
func stableEnd(t *testing.T, addr, topic string) int64 {
	t.Helper()
	brokers := []string{addr}
	var sum int64
	for _, end := range kafkatest.StableEnds(t, brokers, topic, kafkatest.Partitions(t, brokers, topic)) {
		sum += end
	}
	return sum
}

// headerIDs counts the ce_id headers (binary mode) of topic's records.
func headerIDs(t *testing.T, brokers []string, topic string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range kafkatest.Consume(t, brokers, topic) {
		for _, h := range r.Headers {
			if h.Key == "ce_id" {
				ids[string(h.Value)]++
			}
		}
	}
	return ids
}

func structuredEvents(t *testing.T, recs []*kgo.Record) []event.Event {
	t.Helper()
	out := make([]event.Event, 0, len(recs))
	for _, r := range recs {
		var e event.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Errorf("record at partition %d offset %d is not a structured CloudEvent: %v", r.Partition, r.Offset, err)
			continue
		}
		out = append(out, e)
	}
	return out
}
