package kafkasource

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
)

// tp names one partition.
type tp struct {
	topic string
	part  int32
}

// partState is what the source knows of one assigned partition. Offsets
// are "next record" offsets; -1 means not known.
type partState struct {
	// epoch is the assignment the state belongs to: an ack of records
	// read under an earlier assignment of the partition moves nothing.
	epoch       uint64
	read        int64
	acked       int64 // everything before it was delivered to every sink
	leaderEpoch int32 // of the last delivered record, for the commit
	committed   int64
	end         int64 // high watermark
	// skipBelow: records before it are in the pipeline already, read
	// under an earlier assignment of the partition this one resumed.
	skipBelow int64
}

// mark is where one batch ends in one partition.
type mark struct {
	tp
	epoch       uint64
	next        int64
	leaderEpoch int32
}

// offsets tracks reads, deliveries and commits per partition. The Read
// goroutine, the pipeline's acks, the group's callbacks, the committer and
// Status all use it, under mu.
type offsets struct {
	mu    sync.Mutex
	parts map[tp]*partState
	// retired are partitions revoked or lost, as they were: given back
	// to this member before anyone committed, they resume (see resume).
	retired map[tp]*partState
	epoch   uint64
	// next is the checkpoint: per topic and partition, the offset after
	// the last record this source handed out. It keeps partitions after a
	// revoke (see README: they matter only where the group has no offset).
	next positions
}

func newOffsets() *offsets {
	return &offsets{parts: map[tp]*partState{}, retired: map[tp]*partState{}, next: positions{}}
}

// seed starts the checkpoint from the one the source was opened with.
func (o *offsets) seed(from positions) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, ps := range from {
		o.next[t] = maps.Clone(ps)
	}
}

// assign starts a new assignment epoch for ps.
func (o *offsets) assign(ps map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.epoch++
	for t, parts := range ps {
		for _, p := range parts {
			if old := o.parts[tp{t, p}]; old != nil { // assigned twice: keep it
				continue
			}
			o.parts[tp{t, p}] = &partState{epoch: o.epoch, read: -1, acked: -1, leaderEpoch: -1, committed: -1, end: -1}
		}
	}
}

// drop retires ps (revoked or lost): acks of their records in flight
// commit nothing, unless the partition resumes.
func (o *offsets) drop(ps map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, parts := range ps {
		for _, p := range parts {
			k := tp{t, p}
			if st := o.parts[k]; st != nil {
				o.retired[k] = st
			}
			delete(o.parts, k)
		}
	}
}

// resume continues the earlier assignment of a partition given back to
// this member when the group's offset is still the one this member last
// committed (-1: none): nobody else committed meanwhile, so every record
// before the earlier read position is in this member's pipeline and will
// be delivered, or the pipeline stops and reading restarts from the
// commit. Its records in flight then commit again, and the ones the
// consumer fetches again from the group's offset are not handed out twice.
func (o *offsets) resume(topic string, part int32, groupOffset int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := tp{topic, part}
	old := o.retired[k]
	delete(o.retired, k)
	if old == nil || old.committed != groupOffset || old.read <= groupOffset {
		return false
	}
	old.skipBelow = old.read
	o.parts[k] = old
	return true
}

// register records that rs (one poll, in partition order) are handed out
// and returns those to hand out (see resume), the marks of the batch and
// the checkpoint after it.
func (o *offsets) register(rs []*kgo.Record) ([]*kgo.Record, []mark, ferry.Position, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var marks []mark
	idx := map[tp]int{}
	out := rs[:0]
	for _, r := range rs {
		k := tp{r.Topic, r.Partition}
		p, ok := o.parts[k]
		if !ok { // cannot happen while rebalances wait for AllowRebalance
			o.epoch++
			p = &partState{epoch: o.epoch, read: -1, acked: -1, leaderEpoch: -1, committed: -1, end: -1}
			o.parts[k] = p
		}
		if r.Offset < p.skipBelow {
			continue
		}
		out = append(out, r)
		p.read = r.Offset + 1
		m := mark{tp: k, epoch: p.epoch, next: r.Offset + 1, leaderEpoch: r.LeaderEpoch}
		if i, ok := idx[k]; ok {
			marks[i] = m
		} else {
			idx[k] = len(marks)
			marks = append(marks, m)
		}
		if o.next[k.topic] == nil {
			o.next[k.topic] = map[int32]int64{}
		}
		o.next[k.topic][k.part] = r.Offset + 1
	}
	cp, err := json.Marshal(o.next)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode checkpoint: %w", err)
	}
	return out, marks, cp, nil
}

// delivered moves the acknowledged offsets of a batch's marks.
func (o *offsets) delivered(marks []mark) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range marks {
		p := o.parts[m.tp]
		if p == nil { // retired: counts if the partition resumes
			p = o.retired[m.tp]
		}
		if p != nil && p.epoch == m.epoch && m.next > p.acked {
			p.acked, p.leaderEpoch = m.next, m.leaderEpoch
		}
	}
}

// toCommit returns the delivered offsets not committed yet, of the
// partitions in only (all when nil).
func (o *offsets) toCommit(only map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for k, p := range o.parts {
		if p.acked <= p.committed || only != nil && !slices.Contains(only[k.topic], k.part) {
			continue
		}
		if out[k.topic] == nil {
			out[k.topic] = map[int32]kgo.EpochOffset{}
		}
		out[k.topic][k.part] = kgo.EpochOffset{Epoch: p.leaderEpoch, Offset: p.acked}
	}
	return out
}

// committed records offsets the group accepted.
func (o *offsets) committed(topic string, part int32, offset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.parts[tp{topic, part}]; p != nil && offset > p.committed {
		p.committed = offset
	}
}

// setEnd records a partition's high watermark.
func (o *offsets) setEnd(topic string, part int32, end int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.parts[tp{topic, part}]; p != nil && end >= 0 {
		p.end = end
	}
}

// assigned lists the assigned partitions.
func (o *offsets) assigned() map[string][]int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]int32{}
	for k := range o.parts {
		out[k.topic] = append(out[k.topic], k.part)
	}
	return out
}

// status reports the assigned partitions in order.
func (o *offsets) status() []ferry.PartitionStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]ferry.PartitionStatus, 0, len(o.parts))
	for k, p := range o.parts {
		ps := ferry.PartitionStatus{Topic: k.topic, Partition: k.part, Read: p.read, Committed: p.committed, End: p.end}
		if p.end >= 0 && p.committed >= 0 {
			ps.Lag = max(p.end-p.committed, 0)
		}
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b ferry.PartitionStatus) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// positions are a checkpoint: per topic, per partition, the offset of the
// next record to read. Stored and shown as JSON.
type positions map[string]map[int32]int64

// Codec converts checkpoints to and from their text form, the same JSON
// ({"orders":{"0":42,"1":17}}).
type Codec struct{}

var _ ferry.PositionCodec = Codec{}

// ParsePosition implements ferry.PositionCodec.
func (Codec) ParsePosition(text string) (ferry.Position, error) {
	ps, err := parsePositions(ferry.Position(text))
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return nil, fmt.Errorf("encode kafka position: %w", err)
	}
	return b, nil
}

// FormatPosition implements ferry.PositionCodec.
func (Codec) FormatPosition(p ferry.Position) (string, error) {
	if _, err := parsePositions(p); err != nil {
		return "", err
	}
	return string(p), nil
}

func parsePositions(p ferry.Position) (positions, error) {
	var ps positions
	if err := json.Unmarshal(p, &ps); err != nil {
		return nil, fmt.Errorf("kafka position %q: want {\"topic\":{\"partition\":offset}}: %w", p, err)
	}
	for t, parts := range ps {
		for part, off := range parts {
			if part < 0 || off < 0 {
				return nil, fmt.Errorf("kafka position: topic %s partition %d offset %d: negative", t, part, off)
			}
		}
	}
	return ps, nil
}
