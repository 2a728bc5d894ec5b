package mysql

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/ferry-cdc/ferry"
)

// NewBackfill returns a source that performs one backfill without a running
// Ferry (`ferry backfill` when none runs). It streams the table's changes
// from the current position while reading its rows, reconciled exactly as a
// live backfill, so both give the same events; it ends once the backfill is
// done or paused. Its checkpoints carry the progress: opened with one, it
// resumes an unfinished backfill of the same table. It registers as replica
// serverID, which must not be the one a running Ferry uses.
func NewBackfill(name string, cfg *Config, serverID uint32, req ferry.BackfillRequest, log *slog.Logger) (*Source, error) {
	if len(req.Key) == 0 {
		req.Key = cfg.SnapshotKeys[req.Table]
	}
	s, err := newSource(name, cfg, serverID, backfillRun{req: req}, log)
	if err != nil {
		return nil, err
	}
	if err := s.captures(req.Table); err != nil {
		return nil, err
	}
	if s.filter, err = narrowedFilter(cfg, []string{req.Table}); err != nil {
		return nil, err
	}
	return s, nil
}

// backfillRun is the role of a backfill-only source: stream the table's
// changes from the current position while its backfill runs, then end.
type backfillRun struct{ req ferry.BackfillRequest }

func (backfillRun) start(*Config) string { return "latest" }

// checkTables: a backfill checks its table itself (checkRequest).
func (backfillRun) checkTables(*Source, *client.Conn) error { return nil }

// keep resumes only an unfinished backfill of the requested table and
// otherwise starts from the current position, without the checkpoint.
func (b backfillRun) keep(saved []*job) ([]*job, bool) {
	var mine []*job
	for _, j := range saved {
		if j.Table == b.req.Table && !finished(j.State) {
			j.State = ferry.BackfillPaused // resumed by the request, if its options match
			mine = append(mine, j)
		}
	}
	if len(mine) == 0 || b.req.Restart {
		return nil, false
	}
	return mine, true
}

func (b backfillRun) prepare(ctx context.Context, s *Source, _ *client.Conn, st *stream, _ bool) error {
	st.forceTo = b.req.To
	return s.Backfill(ctx, b.req)
}

func (b backfillRun) run(ctx context.Context, s *Source) { s.wg.Go(func() { b.backfill(ctx, s) }) }

// backfill performs the queued backfill, then ends the source: done or
// paused with ferry.ErrEndOfInput, failed with its error.
func (backfillRun) backfill(ctx context.Context, s *Source) {
	r := &snapshotReader{src: s}
	defer r.close()
	for {
		j := s.jobs.next()
		if j == nil {
			s.fail(ctx, ferry.ErrEndOfInput)
			return
		}
		err := s.runJob(ctx, r, j)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.failJob(j, err)
			s.fail(ctx, fmt.Errorf("backfill of %s: %w", j.Table, err))
			return
		case !s.jobs.running(j):
			s.fail(ctx, ferry.ErrEndOfInput) // paused
			return
		}
	}
}

func (backfillRun) explainLostStart(addr string, err error) error {
	return explainLostResume(addr, err)
}

func (backfillRun) describeStart(p position) string { return describeResume(p) }
