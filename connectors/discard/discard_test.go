package discard

import (
	"context"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

func TestAcceptance(t *testing.T) {
	conntest.RunSink(t, conntest.SinkHarness{
		New: func(*testing.T) ferry.Sink { s, _ := New("d", DefaultConfig(), nil); return s },
	})
}

func TestCounts(t *testing.T) {
	s, _ := New("d", DefaultConfig(), nil)
	_ = s.Write(context.Background(), conntest.Events(7, 2))
	if s.Count() != 7 {
		t.Fatalf("Count = %d", s.Count())
	}
}
