package ferry_test

import (
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

func TestOrderingKey(t *testing.T) {
	cases := []struct {
		name    string
		key     any // partitionkey extension; nil: none
		subject string
		want    string
	}{
		{"partitionkey", "db.t/1", "1", "db.t/1"},
		{"integer partitionkey", 42, "1", "42"},
		{"empty partitionkey falls back to the subject", "", "7", "7"},
		{"subject", nil, "7", "7"},
		{"id", nil, "", "e-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := event.New()
			e.SetID("e-1")
			e.SetSubject(c.subject)
			if c.key != nil {
				e.SetExtension("partitionkey", c.key)
			}
			if got := ferry.OrderingKey(&e); got != c.want {
				t.Fatalf("OrderingKey = %q, want %q", got, c.want)
			}
		})
	}
}
