package app

import (
	"context"
	"time"

	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/state"
)

// NewWebhookJournal adapts the state store to the webhook connector.
func NewWebhookJournal(s *state.Store) webhook.Journal { return journal{s} }

// journal adapts the state store to the webhook connector's Journal, so the
// connector does not depend on how state is kept.
type journal struct{ s *state.Store }

var _ webhook.Journal = journal{}

func (j journal) Accept(ctx context.Context, source, id string, recs [][]byte, a webhook.Answer) ([]uint64, *webhook.Answer, error) {
	seqs, prior, err := j.s.Accept(ctx, source, id, recs, state.Answer{Status: a.Status, Body: a.Body, Time: a.Time.UnixNano()})
	if err != nil || prior == nil {
		return seqs, nil, err
	}
	return seqs, &webhook.Answer{Seqs: prior.Seqs, Status: prior.Status, Body: prior.Body, Time: time.Unix(0, prior.Time)}, nil
}

func (j journal) Entries(ctx context.Context, source string, after uint64, max int) ([]webhook.Entry, error) {
	es, err := j.s.Entries(ctx, source, after, max)
	out := make([]webhook.Entry, len(es))
	for i, e := range es {
		out[i] = webhook.Entry{Seq: e.Seq, Record: e.Record}
	}
	return out, err
}

func (j journal) Remove(ctx context.Context, source string, upTo uint64) (int, error) {
	return j.s.Remove(ctx, source, upTo)
}

func (j journal) Info(ctx context.Context, source string) (webhook.JournalInfo, error) {
	i, err := j.s.Info(ctx, source)
	return webhook.JournalInfo{Depth: i.Depth, First: i.First, LastAssigned: i.LastAssigned}, err
}

func (j journal) Expire(ctx context.Context, source string, before time.Time) (int, error) {
	return j.s.Expire(ctx, source, before)
}
