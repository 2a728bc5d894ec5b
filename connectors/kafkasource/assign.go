package kafkasource

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupOpts are the group callbacks. franz-go calls them one at a time,
// from its group goroutine; with BlockRebalanceOnPoll a revoke waits until
// the records of the last poll are registered.
func (s *Source) groupOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
	}
}

// onAssigned starts tracking the new partitions and, for each one the group
// has no committed offset for, commits where it begins (the checkpoint's
// offset, else the configured start) before franz-go fetches the group's
// offsets: the start becomes concrete once, so a restart before anything
// was delivered resumes where this run began instead of resolving
// `latest` again and skipping what was written in between.
func (s *Source) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	s.offs.assign(assigned)
	member, gen := cl.GroupMetadata()
	s.log.Info("kafka partitions assigned", "partitions", assigned, "member_id", member, "generation", gen)
	if err := s.startNew(ctx, cl, assigned); err != nil {
		// The reset offset (earliest) applies: records are read again,
		// never skipped.
		s.log.Warn("cannot set the start of new partitions; they begin at their earliest record", "error", err)
	}
}

// onRevoked commits what was delivered of the revoked partitions, and
// only that, then forgets them: records of theirs still in flight are
// delivered but commit nothing, and the next owner reads them again.
func (s *Source) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if len(revoked) > 0 {
		s.commit(ctx, cl, revoked)
		s.log.Info("kafka partitions revoked", "partitions", revoked)
	}
	s.offs.drop(revoked)
}

// onLost forgets partitions the group took away without a revoke (the
// session expired): committing for them could move another member's offsets.
func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.log.Warn("kafka partitions lost (session expired); their records in flight will be read again by their next owner", "partitions", lost)
	s.offs.drop(lost)
}

// startNew commits the start of the partitions of ps the group has no
// offset for.
func (s *Source) startNew(ctx context.Context, cl *kgo.Client, ps map[string][]int32) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	missing, err := s.uncommitted(ctx, cl, ps)
	if err != nil || len(missing) == 0 {
		return err
	}
	starts := map[string]map[int32]kgo.EpochOffset{}
	resolve := map[string][]int32{}
	for t, parts := range missing {
		for _, p := range parts {
			if off, ok := s.from[t][p]; ok {
				setOffset(starts, t, p, off)
				continue
			}
			switch s.start.kind {
			case "earliest":
				// The reset offset reads from the start already; it is
				// concrete on its own.
			case "committed":
				s.fail(fmt.Errorf("%w: %s partition %d has no committed offset in group %s", errNoCommitted, t, p, s.cfg.Group))
				return nil
			default:
				resolve[t] = append(resolve[t], p)
			}
		}
	}
	if len(resolve) > 0 {
		ts := int64(-1) // latest
		if s.start.kind == "time" {
			ts = s.start.at.UnixMilli()
		}
		if err := listOffsets(ctx, cl, resolve, ts, starts); err != nil {
			return err
		}
	}
	if len(starts) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, starts, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = commitError(resp, err)
	})
	if cerr == nil {
		s.log.Info("kafka partitions start", "group", s.cfg.Group, "offsets", starts)
	}
	return cerr
}

func setOffset(m map[string]map[int32]kgo.EpochOffset, t string, p int32, off int64) {
	if m[t] == nil {
		m[t] = map[int32]kgo.EpochOffset{}
	}
	m[t][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
}

// uncommitted asks the group coordinator which partitions of ps have no
// committed offset.
func (s *Source) uncommitted(ctx context.Context, cl *kgo.Client, ps map[string][]int32) (map[string][]int32, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = s.cfg.Group
	for t, parts := range ps {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = t, parts
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("fetch the offsets of group %s: %w", s.cfg.Group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch the offsets of group %s: %w", s.cfg.Group, err)
	}
	missing := map[string][]int32{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, fmt.Errorf("fetch the offset of %s partition %d in group %s: %w", t.Topic, p.Partition, s.cfg.Group, err)
			}
			switch {
			case s.offs.resume(t.Topic, p.Partition, max(p.Offset, -1)):
				// Its start is where its earlier assignment read to.
			case p.Offset < 0:
				missing[t.Topic] = append(missing[t.Topic], p.Partition)
			default:
				s.offs.committed(t.Topic, p.Partition, p.Offset)
			}
		}
	}
	return missing, nil
}

// listOffsets resolves the first offset at or after ts (unix ms; -1: the
// end) for ps into starts. A time after a partition's last record starts it
// at its end.
func listOffsets(ctx context.Context, cl *kgo.Client, ps map[string][]int32, ts int64, starts map[string]map[int32]kgo.EpochOffset) error {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID, req.IsolationLevel = -1, 1
	for t, parts := range ps {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range parts {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("list offsets: %w", err)
	}
	var atEnd map[string][]int32
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("list the offsets of %s partition %d: %w", t.Topic, p.Partition, err)
			}
			if p.Offset < 0 { // no record at or after the time
				if atEnd == nil {
					atEnd = map[string][]int32{}
				}
				atEnd[t.Topic] = append(atEnd[t.Topic], p.Partition)
				continue
			}
			setOffset(starts, t.Topic, p.Partition, p.Offset)
		}
	}
	if len(atEnd) > 0 && ts >= 0 {
		return listOffsets(ctx, cl, atEnd, -1, starts)
	}
	return nil
}

// commit commits what was delivered and not committed yet, of the
// partitions in only (all when nil), and waits for the answer.
func (s *Source) commit(ctx context.Context, cl *kgo.Client, only map[string][]int32) {
	offs := s.offs.toCommit(only)
	if len(offs) == 0 {
		return
	}
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err = commitError(resp, err); err != nil {
			// Not fatal: the offsets are committed again next time; a
			// crash meanwhile re-delivers.
			s.log.Warn("cannot commit delivered offsets; will retry", "group", s.cfg.Group, "error", err)
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				s.offs.committed(t.Topic, p.Partition, offs[t.Topic][p.Partition].Offset)
			}
		}
	})
}

// commitError is the request's error or the first partition's.
func commitError(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit %s partition %d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
