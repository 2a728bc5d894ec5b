package pipeline

import (
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/transform"
)

// TestLargeEventsGetTheirOwnEntry: entries share blocks, and a block stays
// reachable while any of its entries is held (a retry), with the events of
// all of them; an event with large data gets an entry of its own so that
// delivered neighbours' megabytes are not kept beyond max_in_flight_bytes.
func TestLargeEventsGetTheirOwnEntry(t *testing.T) {
	tr := &transformer{l: &sourceLoop{name: "db"}}
	small, big := event.New(), event.New()
	small.DataEncoded = []byte(`{"id":1}`)
	big.DataEncoded = []byte(`"` + strings.Repeat("x", largeEvent) + `"`)
	es := tr.entry(&transform.Output{Event: &small, Rule: "r"}, 4)
	eb := tr.entry(&transform.Output{Event: &big, Rule: "r"}, 4)
	if len(tr.block) != 1 || &tr.block[0] != es {
		t.Fatalf("the small event's entry is not in the block (block of %d)", len(tr.block))
	}
	for i := range tr.block[:cap(tr.block)] {
		if &tr.block[:cap(tr.block)][i] == eb {
			t.Fatal("the large event's entry was carved from the block")
		}
	}
	if eb.event != &big || eb.rule != "r" || eb.source != "db" || es.event != &small {
		t.Fatalf("entries do not hold their events: %+v %+v", eb, es)
	}
}
