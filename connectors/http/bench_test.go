package httpsink

import (
	"context"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// benchmarkWrite measures events/s to a receiver in Discard mode on
// loopback, in this process: 1000-event Writes over 100 partition keys, at
// the default concurrency (8).
func benchmarkWrite(b *testing.B, mode string) {
	r := receiver.New(receiver.WithDiscard())
	cfg := DefaultConfig()
	cfg.URL, cfg.Mode = r.Start(b), mode
	s, err := New("bench", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	events := conntest.Events(1000, 100)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkWriteBinary(b *testing.B)     { benchmarkWrite(b, ModeBinary) }
func BenchmarkWriteStructured(b *testing.B) { benchmarkWrite(b, ModeStructured) }
func BenchmarkWriteBatch(b *testing.B)      { benchmarkWrite(b, ModeBatch) }
