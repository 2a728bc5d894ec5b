package pipeline

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafka"
	"github.com/ferry-cdc/ferry/internal/state"
)

// countingSink counts what its sink acknowledged and closes done at want.
type countingSink struct {
	ferry.Sink
	countSink
}

func (s *countingSink) Open(ctx context.Context) error  { return s.Sink.Open(ctx) }
func (s *countingSink) Close(ctx context.Context) error { return s.Sink.Close(ctx) }
func (s *countingSink) Write(ctx context.Context, evs []*event.Event) error {
	if err := s.Sink.Write(ctx, evs); err != nil {
		return err
	}
	return s.countSink.Write(ctx, evs)
}

// BenchmarkPipelineTrickleKafka: single-row transactions at 5,000/s
// through the default mapping to the Kafka sink (franz-go); reports the
// process CPU per change and the events per Write. KAFKA_BROKERS names a
// broker in another process (internal/tools/kfakebroker), whose CPU is
// then not counted; else kfake runs in the process. Run with a fixed
// count (-benchtime 15000x: three seconds).
func BenchmarkPipelineTrickleKafka(b *testing.B) {
	brokers := []string{os.Getenv("KAFKA_BROKERS")}
	if brokers[0] == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(6), kfake.AllowAutoTopicCreation())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	}
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := kafka.DefaultConfig()
	cfg.Brokers, cfg.Topic = brokers, "trickle"
	ks, err := kafka.New("out", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	sink := &countingSink{Sink: ks, countSink: countSink{done: make(chan struct{})}}
	sink.want.Store(int64(b.N))
	linger, _ := time.ParseDuration(os.Getenv("SINK_LINGER"))
	rt := runPaced(b, st, sink, sink.done, time.Second/5000, linger)
	b.ReportMetric(float64(b.N)/float64(rt.Stats().sink("out").Writes.Load()), "events/write")
}
