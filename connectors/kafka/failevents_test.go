package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry/connectors/kafkawire"
)

// partitionFailer makes a kfake broker refuse, transiently, the produce
// batches of every partition that received an event match picks, until
// match is cleared: it leaves those partitions out of the produce request
// before the broker handles it, so the broker does not answer for them and
// franz-go retries them (as after a broker that lost a partition's reply)
// until the Write's deadline; the request's other partitions are written.
// Once a partition is refused, its later batches are refused too, as a
// broker would refuse them out of sequence.
type partitionFailer struct {
	mu      sync.Mutex
	match   func(id string) bool
	blocked map[string]bool // "topic/partition"
	err     error           // the first batch it could not decode
}

func failPartitions(c *kfake.Cluster) *partitionFailer {
	f := &partitionFailer{blocked: map[string]bool{}}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.filter(req.(*kmsg.ProduceRequest))
		return nil, nil, false // the broker handles what is left
	})
	return f
}

// set starts refusing partitions with an event match picks; nil stops.
func (f *partitionFailer) set(match func(id string) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match = match
	clear(f.blocked)
	return f.err
}

func (f *partitionFailer) filter(req *kmsg.ProduceRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.match == nil {
		return
	}
	topics := req.Topics[:0]
	for _, t := range req.Topics {
		parts := t.Partitions[:0]
		for _, p := range t.Partitions {
			name := fmt.Sprintf("%s/%d", t.Topic, p.Partition)
			if !f.blocked[name] && !f.holdsMatch(p.Records) {
				parts = append(parts, p)
				continue
			}
			f.blocked[name] = true
		}
		if t.Partitions = parts; len(parts) > 0 {
			topics = append(topics, t)
		}
	}
	req.Topics = topics
}

// holdsMatch decodes an uncompressed record batch and reports whether one
// of its records is a CloudEvent whose id f.match picks.
func (f *partitionFailer) holdsMatch(raw []byte) bool {
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(raw); err != nil {
		f.err = fmt.Errorf("decode record batch: %w", err)
		return false
	}
	recs := batch.Records
	for range batch.NumRecords {
		length, n := binary.Varint(recs)
		if n <= 0 || int(length) > len(recs)-n {
			f.err = fmt.Errorf("record batch of %d records is truncated", batch.NumRecords)
			return false
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(recs[:n+int(length)]); err != nil {
			f.err = fmt.Errorf("decode record: %w", err)
			return false
		}
		recs = recs[n+int(length):]
		r := &kgo.Record{Key: rec.Key, Value: rec.Value}
		for _, h := range rec.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		e, err := kafkawire.Decode(context.Background(), r)
		if err != nil {
			f.err = fmt.Errorf("record is not a CloudEvent: %w", err)
			return false
		}
		if f.match(e.ID()) {
			return true
		}
	}
	return false
}
