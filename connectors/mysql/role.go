package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/ferry-cdc/ferry"
)

// role is what a Source does with the binlog it reads: streaming follows it
// forever and runs backfills on request, backfillRun backfills one table
// and ends, replayRun re-reads a range and ends. The connection, decoder,
// positions and schema history are shared; only these steps differ.
//
// Lifecycle: start is asked by resolveStart and checkTables by preflight,
// keep by restoreJobs, then prepare once the stream is set up and run once
// it is streaming, all during Open; explainLostStart and describeStart may
// be called at any time after.
type role interface {
	// start is where reading begins without a checkpoint (see parseStart).
	start(cfg *Config) string
	// checkTables checks the captured tables at preflight.
	checkTables(s *Source, conn *client.Conn) error
	// keep picks the saved backfills to restore; resume false: ignore
	// the checkpoint and start afresh.
	keep(saved []*job) (jobs []*job, resume bool)
	// prepare readies st, which starts at st.committed, and queues the
	// role's backfills; fresh: opened without a checkpoint.
	prepare(ctx context.Context, s *Source, conn *client.Conn, st *stream, fresh bool) error
	// run starts the role's goroutines, in s.wg, ended by ctx.
	run(ctx context.Context, s *Source)
	// explainLostStart wraps err, the server's refusal of a position it no
	// longer has, with what was lost and what to do.
	explainLostStart(addr string, err error) error
	// describeStart names p, a start the server no longer has, for errors.
	describeStart(p position) string
}

// streaming is the role of a configured source: stream forever, backfill
// on request (and every table first with snapshot: initial).
type streaming struct{}

func (streaming) start(cfg *Config) string { return cfg.Start }

func (streaming) checkTables(s *Source, conn *client.Conn) error { return s.checkIncludedTables(conn) }

func (streaming) keep(saved []*job) ([]*job, bool) { return saved, true }

func (streaming) prepare(ctx context.Context, s *Source, conn *client.Conn, _ *stream, fresh bool) error {
	if fresh && s.cfg.Snapshot == "initial" {
		return s.queueInitialSnapshot(ctx, conn)
	}
	return nil
}

func (streaming) run(ctx context.Context, s *Source) { s.wg.Go(func() { s.runBackfills(ctx) }) }

func (streaming) explainLostStart(addr string, err error) error { return explainLostResume(addr, err) }

func (streaming) describeStart(p position) string { return describeResume(p) }

// explainLostResume is explainLostStart for a source resuming a checkpoint.
func explainLostResume(addr string, err error) error {
	return fmt.Errorf("mysql %s: the resume position is no longer in the server's binlogs (purged, or from another server): "+
		"re-seed with `ferry checkpoint set`/`reset` and backfill the gap: %w", addr, err)
}

// describeResume is describeStart for a source resuming a checkpoint.
func describeResume(p position) string { return "the resume position " + p.String() }

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

// restoreJobs takes the backfills saved in a checkpoint that the role keeps;
// it returns the checkpoint to resume from, nil when the role starts afresh.
func (s *Source) restoreJobs(from ferry.Position) (ferry.Position, error) {
	if from == nil {
		return nil, nil
	}
	saved, err := decodeJobs(from)
	if err != nil {
		return nil, errFatal(fmt.Errorf("mysql source %s: stored checkpoint: %w", s.name, err))
	}
	saved, resume := s.role.keep(saved)
	if !resume {
		return nil, nil
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
