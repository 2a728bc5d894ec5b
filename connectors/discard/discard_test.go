package discard

import (
	"context"
	"errors"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

func newSink(t *testing.T) *Sink {
	t.Helper()
	s, err := New("hole", DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptance(t *testing.T) {
	conntest.RunSink(t, conntest.SinkHarness{New: func(t *testing.T) ferry.Sink { return newSink(t) }})
}

func TestCount(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		batches []int
		want    uint64
		wantErr error
	}{
		{"counts every event", context.Background(), []int{7, 0, 3}, 10, nil},
		{"cancelled context acknowledges nothing", cancelled, []int{5}, 0, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSink(t)
			for _, n := range c.batches {
				if err := s.Write(c.ctx, conntest.Events(n, 2)); !errors.Is(err, c.wantErr) {
					t.Fatalf("Write(%d) = %v, want %v", n, err, c.wantErr)
				}
			}
			if got := s.Count(); got != c.want {
				t.Fatalf("Count = %d, want %d", got, c.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	s, _ := New("hole", DefaultConfig(), nil)
	events := conntest.Events(1000, 10)
	for b.Loop() {
		_ = s.Write(context.Background(), events)
	}
}
