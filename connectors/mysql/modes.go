package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/ferry-cdc/ferry"
)

// NewBackfill returns a source that performs one backfill without a running
// Ferry (`ferry backfill` when none runs). It streams the table's changes
// from the current position while reading its rows, reconciled exactly as a
// live backfill, so both give the same events; it ends once the backfill is
// done or paused. Its checkpoints carry the progress: opened with one, it
// resumes an unfinished backfill of the same table. cfg.ServerID must not be
// the one a running Ferry uses.
func NewBackfill(name string, cfg *Config, req ferry.BackfillRequest, log *slog.Logger) (*Source, error) {
	c := *cfg
	if len(req.Key) == 0 {
		req.Key = c.SnapshotKeys[req.Table]
	}
	s, err := New(name, &c, log)
	if err != nil {
		return nil, err
	}
	if err := s.captures(req.Table); err != nil {
		return nil, err
	}
	c.Include, c.Start = []string{req.Table}, "latest"
	if s.filter, err = newFilter(&c); err != nil {
		return nil, err
	}
	s.mode, s.request = modeBackfill, req
	return s, nil
}

// Replay is a range of the binlog to read again.
type Replay struct {
	From      string    // FILE:POS or GTID set of a transaction boundary
	Until     string    // FILE:POS to stop at; empty: the end of the binlog at Open
	UntilTime time.Time // stop before the first transaction committed after it
	Tables    []string  // DB.TABLE; empty: every captured table
	To        []string  // sinks; empty: the rules' routing
}

// NewReplay returns a source that re-reads a range of the binlog and emits
// its changes with their original ids, then ends. It saves no checkpoint.
// cfg.ServerID must not be the one a running Ferry uses.
func NewReplay(name string, cfg *Config, r Replay, log *slog.Logger) (*Source, error) {
	if _, err := parsePositionText(r.From); err != nil {
		return nil, ferry.Invalid("from", "%v", err)
	}
	if r.Until != "" {
		p, err := parsePositionText(r.Until)
		if err != nil || p.File == "" {
			return nil, ferry.Invalid("until", "must be FILE:POS or a time (RFC 3339), not %q", r.Until)
		}
	}
	c := *cfg
	s, err := New(name, &c, log)
	if err != nil {
		return nil, err
	}
	for _, t := range r.Tables {
		if err := s.captures(t); err != nil {
			return nil, err
		}
	}
	if len(r.Tables) > 0 {
		c.Include = r.Tables
	}
	c.Start = r.From
	if s.filter, err = newFilter(&c); err != nil {
		return nil, err
	}
	s.mode, s.replay = modeReplay, r
	return s, nil
}

// captures checks that the source's filter captures db.table.
func (s *Source) captures(table string) error {
	db, t, ok := strings.Cut(table, ".")
	if !ok || db == "" || t == "" || strings.Contains(t, ".") {
		return ferry.Invalid("table", "must be DB.TABLE, not %q", table)
	}
	if !s.filter.table(db, t) {
		return ferry.Invalid("table", "%s is not captured by source %s (see its include and exclude)", table, s.name)
	}
	return nil
}

// restoreJobs takes the backfills saved in a checkpoint. A backfill-only
// source resumes only an unfinished backfill of its table and otherwise
// starts from the current position, without the checkpoint.
func (s *Source) restoreJobs(from ferry.Position) (ferry.Position, error) {
	if from == nil {
		return nil, nil
	}
	saved, err := decodeJobs(from)
	if err != nil {
		return nil, errFatal(fmt.Errorf("mysql source %s: stored checkpoint: %w", s.name, err))
	}
	if s.mode == modeBackfill {
		var mine []*job
		for _, j := range saved {
			if j.Table == s.request.Table && !finished(j.State) {
				j.State = ferry.BackfillPaused // resumed by the request, if its options match
				mine = append(mine, j)
			}
		}
		if len(mine) == 0 || s.request.Restart {
			return nil, nil
		}
		saved = mine
	}
	s.jobs.restore(saved)
	return from, nil
}

// queueInitialSnapshot queues a backfill of every captured table (snapshot:
// initial). Tables without a key to page by fail the start, named.
func (s *Source) queueInitialSnapshot(ctx context.Context, conn *client.Conn) error {
	r, err := conn.Execute(`SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return s.explain(err)
	}
	var keyless []string
	queued := 0
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		table, _ := r.GetString(i, 1)
		if !s.filter.table(db, table) {
			continue
		}
		err := s.Backfill(ctx, ferry.BackfillRequest{Table: db + "." + table})
		switch {
		case err == nil:
			queued++
		case errors.Is(err, errNoKey):
			keyless = append(keyless, db+"."+table)
		default:
			return errFatal(err)
		}
	}
	if len(keyless) > 0 {
		return errFatal(fmt.Errorf("mysql source %s: snapshot: initial needs a key to page by; these tables have no primary key: %s "+
			"(name a unique NOT NULL key per table in snapshot_keys, or exclude them)", s.name, strings.Join(keyless, ", ")))
	}
	s.log.Info("initial snapshot queued", "tables", queued)
	return nil
}

// replayEnd is where a replay stops: --until or the binlog's end now,
// whichever comes first, and --until's time if given.
func (s *Source) replayEnd(conn *client.Conn, start position) (*replayEnd, error) {
	file, pos, err := s.masterStatus(conn)
	if err != nil {
		return nil, err
	}
	end := &replayEnd{pos: position{File: file, Pos: pos}, time: s.replay.UntilTime}
	if s.replay.Until != "" {
		until, _ := parsePositionText(s.replay.Until) // checked by NewReplay
		if comparePositions(until, end.pos) < 0 {
			end.pos = until
		}
	}
	if start.File != "" && comparePositions(end.pos, start) < 0 {
		return nil, ferry.Invalid("until", "%s is before the start %s", end.pos, start)
	}
	args := []any{"from", start.String(), "until", end.pos.String()}
	if !end.time.IsZero() {
		args = append(args, "until_time", end.time)
	}
	s.log.Info("replaying", args...)
	return end, nil
}

// ReplayPosition reports where a replay stands and where it ends, for
// progress displays.
func (s *Source) ReplayPosition() (at, end string) {
	if s.st == nil || s.st.end == nil {
		return "", ""
	}
	if p := s.st.progress.Load(); p != nil {
		at = p.String()
	}
	return at, s.st.end.pos.String()
}

// BackfillSize checks req as Backfill does and counts the rows it would
// read, exactly (`ferry backfill --dry-run`). The source need not be open.
func (s *Source) BackfillSize(ctx context.Context, req ferry.BackfillRequest) (uint64, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if s.info, err = s.preflight(conn); err != nil {
		return 0, err
	}
	s.meta = &metaConn{src: s}
	defer s.meta.close()
	if len(req.Key) == 0 {
		req.Key = s.cfg.SnapshotKeys[req.Table]
	}
	plan, err := s.checkRequest(req)
	if err != nil {
		return 0, err
	}
	r, err := conn.Execute(plan.countSQL())
	if err != nil {
		return 0, fmt.Errorf("count rows of %s: %w", req.Table, err)
	}
	n, _ := r.GetUint(0, 0)
	return n, nil
}
