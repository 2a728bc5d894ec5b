// Package kafkatest asks a Kafka cluster (kfake in tests) what a consumer
// test checks against: a group's committed offsets and partitions' ends.
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
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
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
