package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"golang.org/x/time/rate"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/retry"
)

var _ ferry.Backfiller = (*Source)(nil)

// Backfill checks req against the server (table, key, condition) and queues
// it, or resumes the paused backfill of the same table.
func (s *Source) Backfill(ctx context.Context, req ferry.BackfillRequest) error {
	if s.jobs == nil {
		return fmt.Errorf("mysql source %s: not open", s.name)
	}
	if len(req.Key) == 0 {
		req.Key = s.cfg.SnapshotKeys[req.Table]
	}
	if _, err := s.checkRequest(req); err != nil {
		return err
	}
	j, resumed, err := s.jobs.add(req, s.cfg.SnapshotChunk)
	if err != nil {
		return fmt.Errorf("mysql source %s: %w", s.name, err)
	}
	if resumed {
		s.log.Info("backfill resumed", "table", j.Table, "rows_done", j.Rows, "after_key", j.LastText)
	} else {
		s.log.Info("backfill queued", "table", j.Table, "where", j.Where, "chunk", j.Chunk)
	}
	return nil
}

// Backfills reports the backfills of this run and the saved unfinished ones.
func (s *Source) Backfills() []ferry.BackfillProgress {
	if s.jobs == nil {
		return nil
	}
	return s.jobs.progress()
}

// PauseBackfill stops the backfill of table after its current chunk; its
// progress stays saved.
func (s *Source) PauseBackfill(_ context.Context, table string) error {
	if s.jobs == nil {
		return fmt.Errorf("mysql source %s: not open", s.name)
	}
	if err := s.jobs.pause(table); err != nil {
		return fmt.Errorf("mysql source %s: %w", s.name, err)
	}
	s.log.Info("backfill paused", "table", table)
	return nil
}

// checkRequest fails on what would fail the backfill later: an unknown or
// uncaptured table, no usable key, a condition not allowed or that the
// server rejects. It returns the table's plan.
func (s *Source) checkRequest(req ferry.BackfillRequest) (plan *snapshotPlan, err error) {
	if err := s.captures(req.Table); err != nil {
		return nil, err
	}
	db, table, _ := strings.Cut(req.Table, ".")
	if req.Chunk < 0 || req.Rate < 0 {
		return nil, ferry.Invalid("chunk", "chunk and rate must not be negative")
	}
	err = s.meta.do(func(m *metaConn) error {
		p, err := loadSnapshotPlan(m.conn, s.filter, s.info.flavor, db, table, req.Key, req.Where)
		var fe *ferry.FieldError
		switch {
		case errors.As(err, &fe):
			return err
		case err != nil:
			return ferry.Invalid("table", "%w", err)
		}
		plan = p
		stmt, err := m.conn.Prepare(p.chunkSQL(true, 1))
		if err != nil {
			var me *gomysql.MyError
			if errors.As(err, &me) {
				return ferry.Invalid("where", "the server rejects the chunk query: %s", me.Message)
			}
			return err
		}
		return stmt.Close()
	})
	return plan, err
}

// runBackfills performs queued backfills one at a time until ctx ends.
func (s *Source) runBackfills(ctx context.Context) {
	r := &snapshotReader{src: s}
	defer r.close()
	for {
		j := s.jobs.next()
		if j == nil {
			select {
			case <-s.jobs.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := s.runJob(ctx, r, j)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.failJob(j, err)
		}
	}
}

// failJob records that j failed; the source streams on.
func (s *Source) failJob(j *job, err error) {
	s.jobs.fail(j, err)
	s.log.Error("backfill failed", "table", j.Table, "error", err)
}

// runJob reads and delivers the chunks of j until it is done or paused.
func (s *Source) runJob(ctx context.Context, r *snapshotReader, j *job) error {
	plan, err := s.prepareJob(ctx, r, j)
	if err != nil {
		// The server may be restarting: a lost connection is retried like
		// a failed chunk read; a server error fails the job.
		var me *gomysql.MyError
		if errors.As(err, &me) || isFatal(err) || ctx.Err() != nil {
			return err
		}
		if plan, err = s.recoverRead(ctx, r, j, err); err != nil {
			return err
		}
	}
	s.log.Info("backfill running", "table", j.Table, "rows_done", j.Rows, "after_key", j.LastText)
	var limiter *rate.Limiter
	if j.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(j.Rate), j.Chunk)
	}
	for s.jobs.running(j) {
		if limiter != nil {
			if err := limiter.WaitN(ctx, j.Chunk); err != nil {
				return err
			}
		}
		w := s.st.openWindow(plan, j)
		c, err := r.read(s.jobs.last(j))
		if err != nil {
			s.st.closeWindow(w)
			if plan, err = s.recoverRead(ctx, r, j, err); err != nil {
				return err
			}
			continue
		}
		if comparePositions(c.at, w.start) < 0 {
			// The stream passed changes this snapshot predates: read again.
			s.st.closeWindow(w)
			continue
		}
		if err := s.st.deliverChunk(ctx, w, c); err != nil {
			return err
		}
		select {
		case <-w.emitted:
		case <-ctx.Done():
			return ctx.Err()
		}
		if c.final {
			s.log.Info("backfill done", "table", j.Table, "rows", j.Rows, "chunks", j.Chunks)
			return nil
		}
	}
	return nil
}

// prepareJob connects the reader if needed and readies j's statements.
func (s *Source) prepareJob(ctx context.Context, r *snapshotReader, j *job) (*snapshotPlan, error) {
	if r.conn == nil {
		if err := r.connect(ctx); err != nil {
			return nil, err
		}
	}
	plan, err := loadSnapshotPlan(r.conn, s.filter, s.info.flavor, j.db(), j.table(), j.Key, j.Where)
	if err != nil {
		return nil, err
	}
	if err := r.prepare(plan, j.Chunk); err != nil {
		return nil, err
	}
	if n, err := r.estimate(plan); err == nil {
		s.jobs.setEstimate(j, n)
	}
	return plan, nil
}

// recoverRead handles a failed chunk read: a server error (bad condition,
// dropped table, lost privilege) fails the job; anything else is a lost
// connection, retried with backoff on a new one.
func (s *Source) recoverRead(ctx context.Context, r *snapshotReader, j *job, readErr error) (*snapshotPlan, error) {
	var me *gomysql.MyError
	if errors.As(readErr, &me) || isFatal(readErr) {
		return nil, fmt.Errorf("read chunk: %w", readErr)
	}
	b := retry.New(retry.Reconnect())
	logRetry := func(_ int, err error, wait time.Duration) {
		s.log.Warn("backfill read failed; reconnecting", "table", j.Table, "retry_in", wait.String(), "error", err)
	}
	delay := b.Next(readErr)
	logRetry(0, readErr, delay)
	if err := b.Sleep(ctx, delay); err != nil {
		return nil, err
	}
	var plan *snapshotPlan
	err := b.Do(ctx, func(ctx context.Context) error {
		r.close()
		var err error
		if plan, err = s.prepareJob(ctx, r, j); errors.As(err, &me) || isFatal(err) {
			return retry.Permanent(err)
		}
		return err
	}, logRetry)
	return plan, err
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
