package kafka

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry/connectors/conntest"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWriteSmall is the steady trickle's shape: Writes of a few
// events over as many keys (6 partitions); reports the produce requests
// and the process CPU per Write. KAFKA_BROKERS names a broker in another
// process (internal/tools/kfakebroker), whose CPU is then not counted.
func BenchmarkWriteSmall(b *testing.B) {
	for _, n := range []int{1, 4, 8, 16, 32} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			brokers := []string{os.Getenv("KAFKA_BROKERS")}
			if brokers[0] == "" {
				brokers = cluster(b, kfake.SeedTopics(6, "orders")).ListenAddrs()
			}
			s := newSink(b, benchClient(), brokers, nil)
			var cnt produceCounter
			if s.opts != nil {
				s.opts = append(s.opts, kgo.WithHooks(&cnt))
			}
			events := conntest.Events(n, n)
			ctx := context.Background()
			if err := s.Write(ctx, events); err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuNow()
			for b.Loop() {
				if err := s.Write(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuNow() - cpu0
			b.ReportMetric(float64(cnt.requests.Load())/float64(b.N+1), "requests/op")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

func benchClient() string {
	if c := os.Getenv("KAFKA_CLIENT"); c != "" {
		return c
	}
	return clientFranz
}
