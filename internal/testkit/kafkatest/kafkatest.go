// Package kafkatest asks a Kafka cluster (kfake in tests) what a consumer
// test checks against: a group's committed offsets, partitions' ends, and
// a topic's records up to those ends.
package kafkatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Committed returns group's committed offset of each of topic's first
// partitions partitions (-1: none).
func Committed(t testing.TB, brokers []string, group, topic string, partitions int) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rt.Partitions = append(rt.Partitions, int32(p))
	}
	req.Topics = append(req.Topics, rt)
	resp, err := request(t, brokers, req)
	if err != nil {
		t.Fatalf("fetch the offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, tt := range resp.(*kmsg.OffsetFetchResponse).Topics {
		for _, p := range tt.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// Partitions returns how many partitions topic has, 0 when it does not
// exist.
func Partitions(t testing.TB, brokers []string, topic string) int {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := request(t, brokers, req)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	for _, tt := range resp.(*kmsg.MetadataResponse).Topics {
		if tt.Topic == nil || *tt.Topic != topic {
			continue
		}
		switch err := kerr.ErrorForCode(tt.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return 0
		case err != nil:
			t.Fatalf("metadata of %s: %v", topic, err)
		}
		return len(tt.Partitions)
	}
	return 0
}

// Ends returns the high watermark of each of topic's first partitions
// partitions.
func Ends(t testing.TB, brokers []string, topic string, partitions int) map[int32]int64 {
	t.Helper()
	return ends(t, brokers, topic, partitions, 0)
}

// StableEnds returns the last stable offset of each of topic's first
// partitions partitions: where a read_committed consumer stops, before the
// first transaction still open.
func StableEnds(t testing.TB, brokers []string, topic string, partitions int) map[int32]int64 {
	t.Helper()
	return ends(t, brokers, topic, partitions, 1)
}

// ends lists the latest offsets under isolation (0: read_uncommitted, the
// high watermark; 1: read_committed, the last stable offset).
func ends(t testing.TB, brokers []string, topic string, partitions int, isolation int8) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = int32(p), -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := request(t, brokers, req)
	if err != nil {
		t.Fatalf("list the ends of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	for _, tt := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, p := range tt.Partitions {
			out[p.Partition] = p.Offset
		}
	}
	return out
}

// Consume reads topic from its start up to the ends its partitions have
// when called (records produced meanwhile may or may not be included)
// and returns the data records, partition by partition in offset order.
// An empty poll is not taken for the end, which on a loaded machine it
// often is not: the test fails if the ends are not reached within a
// minute, naming the partitions left and the fetch errors seen.
func Consume(t testing.TB, brokers []string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	return consume(t, brokers, topic, Ends(t, brokers, topic, Partitions(t, brokers, topic)), opts)
}

// ConsumeCommitted is Consume with isolation.level=read_committed, up to
// the partitions' last stable offsets: every committed transaction's
// records once, no aborted or open one's.
func ConsumeCommitted(t testing.TB, brokers []string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ends := StableEnds(t, brokers, topic, Partitions(t, brokers, topic))
	return consume(t, brokers, topic, ends, append([]kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...))
}

func consume(t testing.TB, brokers []string, topic string, ends map[int32]int64, opts []kgo.Opt) []*kgo.Record {
	t.Helper()
	left := map[int32]int64{} // partition -> its end, until read to it
	for p, end := range ends {
		if end > 0 {
			left[p] = end
		}
	}
	if len(left) == 0 {
		return nil
	}
	// Control records (transaction markers) are kept so the last offset
	// of a transactional partition, always a marker, is seen: read
	// committed hides it, and the partition would never reach its end.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Only a hang ends this early: the records are there to be read.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []*kgo.Record
	var errs []error
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume %s: %d records read in a minute; partitions not read to their ends (partition: end) %v; fetch errors %v",
				topic, len(out), left, errs)
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if len(errs) < 5 {
				errs = append(errs, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	return out
}

func request(t testing.TB, brokers []string, req kmsg.Request) (kmsg.Response, error) {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cl.Request(ctx, req)
}

// Produce writes rs synchronously with a plain producer, failing the test
// when a record is refused.
func Produce(t testing.TB, brokers []string, rs ...*kgo.Record) {
	t.Helper()
	cl := client(t, brokers)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func client(t testing.TB, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
