package kafkasource

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
)

// TestRebalanceCommitsOnlyWhatWasDelivered: a first member reads both
// partitions without delivering; a second member joins and takes one.
// The revoke commits nothing of it, the new owner reads it from its start,
// and the first member's late ack commits only the partition it kept.
func TestRebalanceCommitsOnlyWhatWasDelivered(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(2, "orders"))
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: fmt.Appendf(nil, "%d", i)})
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	first := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.CommitInterval = time.Hour })
	openSource(t, first, nil)
	var unacked []ferry.Batch
	for n := 0; n < 10; {
		b := readBatch(t, first, 10*time.Second)
		unacked = append(unacked, b)
		n += len(b.Changes)
	}
	second := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.CommitInterval = time.Hour })
	openSource(t, second, nil)
	// Both members poll (a rebalance waits for the first one's poll to
	// be allowed) until each holds one partition.
	var got []ferry.Change
	for deadline := time.Now().Add(30 * time.Second); len(first.offs.assigned()["orders"]) != 1 || len(got) < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("no rebalance: first holds %v, second read %d", first.offs.assigned(), len(got))
		}
		_, _ = tryRead(first)
		if b, err := tryRead(second); err == nil {
			got = append(got, b.Changes...)
		}
	}
	moved := second.offs.assigned()["orders"]
	if len(moved) != 1 {
		t.Fatalf("second holds %v", second.offs.assigned())
	}
	for _, c := range got {
		if c.Request.Kafka.Partition != moved[0] {
			t.Fatalf("second read partition %d, holds %d", c.Request.Kafka.Partition, moved[0])
		}
	}
	if got[0].Request.Kafka.Offset != 0 {
		t.Fatalf("the new owner started at offset %d: the revoke committed undelivered records", got[0].Request.Kafka.Offset)
	}
	for _, b := range unacked {
		if err := b.Ack(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	first.commit(context.Background(), first.client, nil)
	committed := kafkatest.Committed(t, c.ListenAddrs(), "ferry-test", "orders", 2)
	if committed[moved[0]] >= 0 {
		t.Fatalf("a late ack committed %d for partition %d, which moved", committed[moved[0]], moved[0])
	}
	if kept := 1 - moved[0]; committed[kept] != 5 {
		t.Fatalf("partition %d kept by the first member committed at %d, want 5", kept, committed[kept])
	}

	// The second member leaves without delivering: the partition comes
	// back to the first, nobody having committed it, and resumes where
	// the first read to: its records in flight are not handed out twice,
	// and their (earlier) ack now commits them.
	if err := second.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(first.offs.assigned()["orders"]) != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the partition did not come back: first holds %v", first.offs.assigned())
		}
		if b, err := tryRead(first); err == nil && len(b.Changes) > 0 {
			t.Fatalf("records handed out again after resuming: %s", b.Changes[0].ID)
		}
	}
	for range 10 {
		if b, err := tryRead(first); err == nil && len(b.Changes) > 0 {
			t.Fatalf("records handed out again after resuming: %s", b.Changes[0].ID)
		}
	}
	first.commit(context.Background(), first.client, nil)
	if c := kafkatest.Committed(t, c.ListenAddrs(), "ferry-test", "orders", 2); c[0] != 5 || c[1] != 5 {
		t.Fatalf("after resuming, committed %v, want 5 for both", c)
	}
}

func readBatch(t *testing.T, s *Source, d time.Duration) ferry.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	b, err := s.Read(ctx)
	if err != nil {
		t.Fatalf("Read = %v", err)
	}
	return b
}

func tryRead(s *Source) (ferry.Batch, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	return s.Read(ctx)
}
