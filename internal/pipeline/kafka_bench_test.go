package pipeline

import (
	"context"
	"flag"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	httpsink "github.com/ferry-cdc/ferry/connectors/http"
	"github.com/ferry-cdc/ferry/connectors/kafkasource"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
	"github.com/ferry-cdc/ferry/transform"
)

// The Kafka -> HTTP benchmarks run the kafka source, the pipeline and the
// HTTP sink against kfake and a discarding CloudEvents receiver, all in the
// benchmark process on loopback. Records are what a Ferry Kafka sink
// writes: CloudEvents in the binary binding (ce_* headers, a JSON value of
// about 300 bytes), keyed over 1,000 keys, on 4 partitions. Run them with
// -benchtime=1x.
var (
	kafkaRecords = flag.Int("kafka-records", 20000, "Kafka benchmarks: records drained per case")
	kafkaOutage  = flag.Duration("kafka-outage", time.Minute, "BenchmarkKafkaLagRecovery: how long the HTTP endpoint is down")
	kafkaRate    = flag.Int("kafka-rate", 1000, "BenchmarkKafkaLagRecovery: records produced per second until the endpoint is back")
)

const kafkaBenchTopic = "bench"

// BenchmarkKafkaToHTTP drains kafka-records pre-produced records to the
// endpoint, per HTTP sink mode (binary: one event per request, 8 lanes;
// batch: up to 100 events per request). The rate is measured from the
// first event settled to the last, so the group join is not counted.
func BenchmarkKafkaToHTTP(b *testing.B) {
	for _, mode := range []string{httpsink.ModeBinary, httpsink.ModeBatch} {
		b.Run("mode="+mode, func(b *testing.B) {
			for range b.N {
				brokers := kafkaBenchCluster(b)
				n := *kafkaRecords
				produceCE(b, brokers, 0, n)
				recv := receiver.New(receiver.WithDiscard())
				rt, stop := runKafkaPipeline(b, brokers, kafkaHTTPSink(b, recv.Start(b), mode))
				released := &rt.Stats().Source("kafka").Released
				waitUntil(b, func() bool { return released.Load() >= 1 }, time.Minute)
				start, cpu := time.Now(), processCPU()
				waitUntil(b, func() bool { return released.Load() >= uint64(n) }, 10*time.Minute)
				took, cpu := time.Since(start), processCPU()-cpu
				stop()
				if recv.Count() < n {
					b.Fatalf("endpoint got %d of %d events", recv.Count(), n)
				}
				b.Logf("%s: %d records in %v, %d events and %d requests at the endpoint", mode, n, took.Round(time.Millisecond), recv.Count(), recv.Attempts())
				b.ReportMetric(float64(n-1)/took.Seconds(), "events/s")
				// On a shared machine the rate follows the other load; the
				// CPU time per event (source, pipeline, sink, the receiver,
				// GC) compares code changes better.
				b.ReportMetric(float64(cpu.Microseconds())/float64(n-1), "cpu-µs/event")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}

// BenchmarkKafkaLagRecovery: records are produced at kafka-rate while the
// endpoint is healthy for 2 s, then down (503 to every request) for
// kafka-outage, then back; production stops when it is back. Reported: the
// consumer lag (records produced and not yet settled) when the endpoint
// came back, how long until the first event was delivered again (the sink
// retries with the default policy, whose backoff reaches 30 s in a long
// outage), how long until the lag was 0, and the drain rate of the backlog.
func BenchmarkKafkaLagRecovery(b *testing.B) {
	for range b.N {
		brokers := kafkaBenchCluster(b)
		recv := receiver.New(receiver.WithDiscard())
		rt, stop := runKafkaPipeline(b, brokers, kafkaHTTPSink(b, recv.Start(b), httpsink.ModeBinary))
		released := &rt.Stats().Source("kafka").Released

		produced := produceAtRate(b, brokers, *kafkaRate, 2*time.Second, 0)
		waitUntil(b, func() bool { return released.Load() >= uint64(produced) }, time.Minute)
		recv.SetOutage(true)
		produced += produceAtRate(b, brokers, *kafkaRate, *kafkaOutage, produced)
		backlog := produced - int(released.Load())
		before := recv.Count()
		recv.SetOutage(false)
		back := time.Now()
		waitUntil(b, func() bool { return recv.Count() > before }, 10*time.Minute)
		first := time.Since(back)
		waitUntil(b, func() bool { return released.Load() >= uint64(produced) }, 30*time.Minute)
		recovered := time.Since(back)
		stop()
		b.Logf("outage %v at %d records/s: backlog %d records; first delivery %v after the endpoint came back, lag 0 after %v",
			*kafkaOutage, *kafkaRate, backlog, first.Round(time.Millisecond), recovered.Round(time.Millisecond))
		b.ReportMetric(float64(backlog), "backlog_records")
		b.ReportMetric(first.Seconds(), "first_delivery_s")
		b.ReportMetric(recovered.Seconds(), "recovery_s")
		b.ReportMetric(float64(backlog)/(recovered-first).Seconds(), "drain_events/s")
		b.ReportMetric(0, "ns/op")
	}
}

func kafkaBenchCluster(b *testing.B) []string {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, kafkaBenchTopic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaHTTPSink(b *testing.B, url, mode string) ferry.Sink {
	b.Helper()
	cfg := httpsink.DefaultConfig()
	cfg.URL, cfg.Mode = url, mode
	s, err := httpsink.New("s", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// runKafkaPipeline runs a kafka source (its own group) into sink until
// stop is called.
func runKafkaPipeline(b *testing.B, brokers []string, sink ferry.Sink) (*Runtime, func()) {
	b.Helper()
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := kafkasource.DefaultConfig()
	cfg.Brokers, cfg.Topics, cfg.Group = brokers, []string{kafkaBenchTopic}, "bench"
	src, err := kafkasource.New("kafka", cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	eng, _ := transform.New(transform.Options{TypePrefix: "bench", DefaultTo: []string{"s"}})
	rt, err := New(Config{Store: st, Engine: eng, Sources: []SourceSpec{{Name: "kafka", Source: src}},
		Sinks: []SinkSpec{{Name: "s", Sink: sink}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	return rt, func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("pipeline: %v", err)
		}
		_ = st.Close()
	}
}

// produceCE writes n binary-binding CloudEvents records numbered from
// first.
func produceCE(b *testing.B, brokers []string, first, n int) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		rs := make([]*kgo.Record, 0, chunk)
		for j := i; j < min(i+chunk, n); j++ {
			rs = append(rs, ceRecord(first+j))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := cl.ProduceSync(ctx, rs...).FirstErr()
		cancel()
		if err != nil {
			b.Fatalf("produce: %v", err)
		}
	}
}

// produceAtRate produces rate records a second, in tenths of a second,
// for d, numbering them from first, and returns how many it wrote.
func produceAtRate(b *testing.B, brokers []string, rate int, d time.Duration, first int) int {
	b.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	per := max(rate/10, 1)
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		produceCE(b, brokers, first+n, per)
		n += per
	}
	return n
}

func ceRecord(i int) *kgo.Record {
	key := fmt.Sprintf("erp.invoices/%d", i%1000)
	value := fmt.Appendf(nil, `{"op":"update","db":"erp","table":"invoices","pk":{"id":%d},"after":{"id":%d,"customer":"ACME Corporation","total":"120.00","status":"open","version":%d},"source":{"file":"mysql-bin.000001","pos":%d,"server_id":1}}`,
		i%1000, i%1000, i, 4+i*300)
	return &kgo.Record{Topic: kafkaBenchTopic, Key: []byte(key), Value: value, Headers: []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte("1.0")},
		{Key: "ce_id", Value: fmt.Appendf(nil, "0-1-%d#1", i)},
		{Key: "ce_source", Value: []byte("/ferry/erp-db/erp/invoices")},
		{Key: "ce_type", Value: []byte("com.example.erp.invoices.updated")},
		{Key: "ce_subject", Value: fmt.Appendf(nil, "%d", i%1000)},
		{Key: "ce_partitionkey", Value: []byte(key)},
		{Key: "content-type", Value: []byte("application/json")},
	}}
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func waitUntil(b *testing.B, cond func() bool, limit time.Duration) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("not reached within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
