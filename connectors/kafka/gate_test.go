package kafka

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGateHoldsBackAKeyBehindAFailure: sarama encodes a record for the
// broker only if the earlier records of its key were encoded and none
// failed; other keys and key: none go on. (TestOutageKeepsPerKeyOrder
// fails without the gate: sarama fails a message when no leader is known
// and sends the next ones of its partition.)
func TestGateHoldsBackAKeyBehindAFailure(t *testing.T) {
	rec := func(key string) *kgo.Record {
		if key == "" {
			return &kgo.Record{}
		}
		return &kgo.Record{Key: []byte(key)}
	}
	held := func(err error, earlier int) bool {
		var h *heldBack
		return errors.As(err, &h) && h.earlier == earlier
	}
	// 0:a 1:b 2:a 3:a 4:none 5:b
	g := newGate([]*kgo.Record{rec("a"), rec("b"), rec("a"), rec("a"), rec(""), rec("b")})
	// Record 0 failed before sarama encoded it (no leader): 2 and 3 wait.
	if err := g.pass(1); err != nil {
		t.Fatalf("key b held back: %v", err)
	}
	if err := g.pass(2); !held(err, 0) {
		t.Fatalf("record 2 behind unsent record 0: %v", err)
	}
	if err := g.pass(3); !held(err, 0) {
		t.Fatalf("record 3 behind unsent record 0: %v", err)
	}
	if err := g.pass(4); err != nil {
		t.Fatalf("key none held back: %v", err)
	}
	// Record 1 was encoded, then its batch failed: 5 waits.
	g.fail(1)
	if err := g.pass(5); !held(err, 1) {
		t.Fatalf("record 5 behind failed record 1: %v", err)
	}
	// A retried record passes again.
	g2 := newGate([]*kgo.Record{rec("a"), rec("a")})
	for range 2 {
		if g2.pass(0) != nil || g2.pass(1) != nil {
			t.Fatal("in-order records held back")
		}
	}
}
