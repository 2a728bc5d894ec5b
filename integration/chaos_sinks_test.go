package integration

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/ebfake"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// chaosSinks are the three destinations of a chaos run and their faults.
type chaosSinks struct {
	http  *receiver.Receiver
	eb    *ebfake.Server
	ebURL string
	kafka *kafkaBroker
}

func startChaosSinks(t *testing.T) *chaosSinks {
	t.Helper()
	s := &chaosSinks{http: receiver.New(), eb: ebfake.New(), kafka: startKafka(t, "changes", 4)}
	ebSrv := httptest.NewServer(s.eb)
	s.ebURL = ebSrv.URL
	t.Cleanup(ebSrv.Close)
	return s
}

// config routes every change to the three sinks: Kafka and EventBridge in
// structured form, so each keeps the CloudEvent's id for the verifier.
func (s *chaosSinks) config() string {
	return fmt.Sprintf(`defaults: {to: [recv, bus, eb]}
sinks:
  bus:
    type: kafka
    brokers: [%s]
    topic: changes
    mode: structured
    retry: {initial_backoff: 50ms, max_backoff: 1s}
  eb:
    type: eventbridge
    region: us-east-1
    event_bus: changes
    endpoint: %s
    detail: event
    access_key_id: AKIDTEST
    secret_access_key: test-secret
    retry: {initial_backoff: 20ms, max_backoff: 500ms}
`, s.kafka.addr, s.ebURL)
}

// restartKafka kills the broker (SIGKILL), leaves it down for a while and
// starts it again on its port and data directory.
func (s *chaosSinks) restartKafka(t *testing.T, down time.Duration) { s.kafka.restart(t, down) }

// ebSpell throttles every call, or fails a third of the entries with a
// transient per-entry error, for a while.
func (s *chaosSinks) ebSpell(rng *rand.Rand, d time.Duration) {
	if rng.IntN(2) == 0 {
		s.eb.ThrottleNext(1 << 30)
		time.Sleep(d)
		s.eb.ThrottleNext(0)
		return
	}
	var n sync.Mutex
	calls := 0
	s.eb.FailEntries(func(ebfake.Entry) string {
		n.Lock()
		defer n.Unlock()
		calls++
		if calls%3 == 0 {
			return "InternalFailure"
		}
		return ""
	})
	time.Sleep(d)
	s.eb.FailEntries(func(ebfake.Entry) string { return "" })
}

// verify waits until every sink holds every committed change, then checks
// each against the workload. EventBridge gives no ordering guarantee (nor
// does AWS), so only its completeness and duplicates are checked.
func (s *chaosSinks) verify(t *testing.T, want []op) {
	t.Helper()
	ids := make(map[string]bool, len(want))
	eventually(t, 5*time.Minute, fmt.Sprintf("%d distinct events at each sink", len(want)), func() bool {
		return distinct(s.http.Events()) >= len(want) && distinct(s.ebEvents(t)) >= len(want) &&
			distinct(s.kafkaEvents(t)) >= len(want)
	})
	for sink, events := range map[string][]event.Event{"http": s.http.Events(), "kafka": s.kafkaEvents(t)} {
		t.Run(sink, func(t *testing.T) { verifyAgainstWorkload(t, events, want) })
	}
	t.Run("eventbridge", func(t *testing.T) {
		evs := s.ebEvents(t)
		verifyDuplicatesIdentical(t, evs)
		for _, e := range s.http.Events() {
			ids[e.ID()] = true
		}
		for _, e := range evs {
			if !ids[e.ID()] {
				t.Errorf("EventBridge has %s, which HTTP (verified against the workload) does not", e.ID())
			}
		}
		if n := distinct(evs); n != len(want) {
			t.Errorf("EventBridge has %d distinct events, %d changes were committed", n, len(want))
		}
	})
	t.Logf("delivered: http %d events, kafka %d, eventbridge %d (duplicates included)", s.http.Count(), len(s.kafkaEvents(t)), len(s.eb.Accepted()))
}

// kafkaEvents reads the whole topic, partition by partition in offset
// order (so per key in produce order), as CloudEvents.
func (s *chaosSinks) kafkaEvents(t *testing.T) []event.Event {
	t.Helper()
	return readEvents(t, s.kafka.addr, "changes")
}

// ebEvents decodes the accepted entries' Detail (the whole CloudEvent).
func (s *chaosSinks) ebEvents(t *testing.T) []event.Event {
	t.Helper()
	var out []event.Event
	for _, en := range s.eb.Accepted() {
		var e event.Event
		if err := json.Unmarshal([]byte(en.Detail), &e); err != nil {
			t.Fatalf("EventBridge Detail is not a CloudEvent: %v\n%s", err, en.Detail)
		}
		out = append(out, e)
	}
	return out
}

// verifyDuplicatesIdentical: every copy of an id carries the same event.
func verifyDuplicatesIdentical(t *testing.T, events []event.Event) {
	t.Helper()
	first := map[string]event.Event{}
	for _, e := range events {
		prev, dup := first[e.ID()]
		if !dup {
			first[e.ID()] = e
			continue
		}
		if string(prev.Data()) != string(e.Data()) || prev.Type() != e.Type() || !prev.Time().Equal(e.Time()) {
			t.Errorf("duplicate %s differs:\n%s\n%s", e.ID(), prev.Data(), e.Data())
		}
	}
}
