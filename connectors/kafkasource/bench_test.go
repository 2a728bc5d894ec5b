package kafkasource

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchValue is the ~300-byte JSON value a Ferry Kafka sink writes for a
// row change.
func benchValue(i int) []byte {
	return fmt.Appendf(nil, `{"op":"update","db":"erp","table":"invoices","pk":{"id":%d},"after":{"id":%d,"customer":"ACME Corporation","total":"120.00","status":"open","version":%d},"source":{"file":"mysql-bin.000001","pos":%d,"server_id":1}}`,
		i%1000, i%1000, i, 4+i*300)
}

func benchKey(i int) []byte { return fmt.Appendf(nil, "erp.invoices/%d", i%1000) }

// binaryRecord is a record as Ferry's Kafka sink writes it in the binary
// binding.
func binaryRecord(i int) *kgo.Record {
	key := benchKey(i)
	return &kgo.Record{Topic: "orders", Partition: 1, Offset: int64(i), Key: key, Value: benchValue(i),
		Timestamp: time.Unix(1_780_000_000, 0), Headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_id", Value: fmt.Appendf(nil, "0-1-%d#1", i)},
			{Key: "ce_source", Value: []byte("/ferry/erp-db/erp/invoices")},
			{Key: "ce_type", Value: []byte("com.example.erp.invoices.updated")},
			{Key: "ce_subject", Value: fmt.Appendf(nil, "%d", i%1000)},
			{Key: "ce_time", Value: []byte("2026-06-01T12:00:00.123456Z")},
			{Key: "ce_partitionkey", Value: key},
			{Key: "content-type", Value: []byte("application/json")},
		}}
}

// structuredRecord carries the same event in the structured binding.
func structuredRecord(i int) *kgo.Record {
	key := benchKey(i)
	value := fmt.Appendf(nil, `{"specversion":"1.0","id":"0-1-%d#1","source":"/ferry/erp-db/erp/invoices","type":"com.example.erp.invoices.updated","subject":"%d","time":"2026-06-01T12:00:00.123456Z","partitionkey":%q,"datacontenttype":"application/json","data":%s}`,
		i, i%1000, key, benchValue(i))
	return &kgo.Record{Topic: "orders", Partition: 1, Offset: int64(i), Key: key, Value: value,
		Timestamp: time.Unix(1_780_000_000, 0), Headers: []kgo.RecordHeader{
			{Key: "content-type", Value: []byte("application/cloudevents+json; charset=UTF-8")},
		}}
}

// plainRecord is a record of some other producer: JSON, a key, a trace
// header.
func plainRecord(i int) *kgo.Record {
	return &kgo.Record{Topic: "orders", Partition: 1, Offset: int64(i), Key: benchKey(i), Value: benchValue(i),
		Timestamp: time.Unix(1_780_000_000, 0), Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		}}
}

// BenchmarkRecordToChange is the per-record cost of turning a record into
// a change: the CloudEvents binding (binary, structured) or the default
// shape (plain).
func BenchmarkRecordToChange(b *testing.B) {
	s, err := New("legacy", func() *Config {
		c := DefaultConfig()
		c.Brokers, c.Topics, c.Group = []string{"127.0.0.1:9092"}, []string{"orders"}, "g"
		return c
	}(), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rec  func(int) *kgo.Record
	}{{"binary", binaryRecord}, {"structured", structuredRecord}, {"plain", plainRecord}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 1024
			rs := make([]*kgo.Record, n)
			for i := range rs {
				rs[i] = tc.rec(i)
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			cpu := processCPU()
			for b.Loop() {
				c := s.change(ctx, rs[i%n])
				if c.Invalid != nil {
					b.Fatal(c.Invalid)
				}
				i++
			}
			// On a shared machine ns/op is mostly waiting for a core; the
			// process's CPU time per record (GC included) is steadier.
			b.ReportMetric(float64(processCPU()-cpu)/float64(i), "cpu-ns/op")
		})
	}
}

// BenchmarkSourceRead drains records from kfake through Read and Ack
// alone (no pipeline): the ceiling the source puts on a Kafka pipeline.
// It logs the records per Read.
func BenchmarkSourceRead(b *testing.B) {
	const n = 20000
	c := cluster(b, kfake.SeedTopics(4, "orders"))
	brokers := c.ListenAddrs()
	produceBench(b, brokers, n)
	b.ResetTimer()
	for range b.N {
		s := newSource(b, brokers, func(c *Config) { c.Group = fmt.Sprintf("bench-%d", time.Now().UnixNano()) })
		openSource(b, s, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		// The first Read joins the group: it is not counted.
		first, err := s.Read(ctx)
		if err != nil {
			b.Fatalf("first Read = %v", err)
		}
		_ = first.Ack(ctx, nil)
		got, reads := len(first.Changes), 0
		start, cpu := time.Now(), processCPU()
		for got < n {
			bt, err := s.Read(ctx)
			if err != nil {
				b.Fatalf("Read after %d of %d = %v", got, n, err)
			}
			got, reads = got+len(bt.Changes), reads+1
			_ = bt.Ack(ctx, nil)
		}
		took, cpu := time.Since(start), processCPU()-cpu
		cancel()
		_ = s.Close(context.Background())
		counted := n - len(first.Changes)
		b.ReportMetric(float64(counted)/took.Seconds(), "records/s")
		b.ReportMetric(float64(counted)/float64(reads), "records/read")
		b.ReportMetric(float64(cpu.Microseconds())/float64(counted), "cpu-µs/record")
	}
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func produceBench(b *testing.B, brokers []string, n int) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, 0, n)
	for i := range n {
		r := binaryRecord(i)
		r.Partition, r.Offset = 0, 0
		rs = append(rs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		b.Fatalf("produce: %v", err)
	}
}
