package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
)

// pollEvery is how often a command following work refreshes its display.
const pollEvery = 250 * time.Millisecond

// finiteFlags are the flags backfill and replay share.
type finiteFlags struct {
	source    *string
	to        stringList
	dryRun    *bool
	serverID  *uint
	logLevel  *string
	logFormat *string
}

func addFiniteFlags(c *command) *finiteFlags {
	f := &finiteFlags{
		source:    c.fs.String("source", "", "source name"),
		dryRun:    c.fs.Bool("dry-run", false, "print what would be sent, send nothing"),
		serverID:  c.fs.Uint("server-id", 0, "replica server_id when run without a running ferry (default: random)"),
		logLevel:  c.fs.String("log-level", "", "debug, info, warn or error (default: log.level; warn under a progress bar)"),
		logFormat: c.fs.String("log-format", "", "text or json (overrides log.format)"),
	}
	c.fs.Var(&f.to, "to", "send only to this sink (repeatable; default: the rules' routing)")
	return f
}

// backfillCmd (re)publishes a table's current rows. With a ferry run
// holding the state store, that process performs it (through its admin
// API); otherwise this process does, streaming the table meanwhile.
func backfillCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("backfill", env)
	f := addFiniteFlags(c)
	table := c.fs.String("table", "", "DB.TABLE to backfill")
	where := c.fs.String("where", "", "SQL condition on the rows to backfill")
	key := c.fs.String("key", "", "unique NOT NULL key columns a,b for tables without a primary key")
	chunk := c.fs.Int("chunk", 0, "rows per chunk (default: the source's snapshot_chunk)")
	rate := c.fs.Float64("rate", 0, "at most this many rows per second (default: unlimited)")
	restart := c.fs.Bool("restart", false, "discard saved progress and start from the first row")
	detach := c.fs.Bool("detach", false, "with a running ferry: start the backfill and return")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *f.source == "" || *table == "" {
		return usagef("backfill needs --source NAME and --table DB.TABLE")
	}
	if *chunk < 0 || *rate < 0 {
		return usagef("--chunk and --rate must not be negative")
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	req := ferry.BackfillRequest{Table: *table, Where: *where, Chunk: *chunk, Rate: *rate, To: f.to, Restart: *restart}
	if *key != "" {
		req.Key = strings.Split(*key, ",")
	}
	log, err := f.logger(env, cfg)
	if err != nil {
		return err
	}
	if *f.dryRun {
		return backfillDryRun(ctx, env, cfg, log, *f.source, req, uint32(*f.serverID))
	}
	store, err := state.Open(cfg.State.Dir, state.Options{})
	if errors.Is(err, state.ErrLocked) {
		return liveBackfill(ctx, env, cfg, log, *f.source, req, *detach)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return standaloneBackfill(ctx, env, cfg, store, log, *f.source, req, uint32(*f.serverID))
}

// logger logs at the --log-level given, else at warn on a terminal (where
// a progress bar shows what info lines would) and at the configured level
// otherwise.
func (f *finiteFlags) logger(env Env, cfg *config.Config) (*slog.Logger, error) {
	level := cfg.Log.Level
	if isTerminal(env.Stderr) && (level == "info" || level == "debug") {
		level = "warn"
	}
	return newLogger(redactingWriter{env.Stderr, cfg.Redactor()}, pick(*f.logLevel, level), pick(*f.logFormat, cfg.Log.Format))
}

// inputError marks request problems (a --where not allowed, an unknown
// table) as bad input: exit code 2, one line, no usage text.
func inputError(err error) error {
	var fe *ferry.FieldError
	var ae *admin.APIError
	if errors.As(err, &fe) || errors.As(err, &ae) && ae.Status == 400 {
		return &badInput{err}
	}
	return err
}

func backfillDryRun(ctx context.Context, env Env, cfg *config.Config, log *slog.Logger, source string, req ferry.BackfillRequest, serverID uint32) error {
	src, err := app.BuildBackfillSource(cfg, source, req, serverID, log)
	if err != nil {
		return inputError(err)
	}
	sizer, ok := src.(ferry.BackfillSizer)
	if !ok {
		return fmt.Errorf("source %s cannot size a backfill", source)
	}
	n, err := sizer.BackfillSize(ctx, req)
	if err != nil {
		return inputError(err)
	}
	to := "the rules' routing"
	if len(req.To) > 0 {
		to = strings.Join(req.To, ", ")
	}
	fmt.Fprintf(env.Stdout, "dry run: %s: %d rows would be backfilled to %s (nothing sent)\n", req.Table, n, to)
	return nil
}

// standaloneBackfill performs the backfill in this process. Ctrl-C pauses
// it after the current chunk; running the same command resumes it.
func standaloneBackfill(ctx context.Context, env Env, cfg *config.Config, store *state.Store, log *slog.Logger, source string, req ferry.BackfillRequest, serverID uint32) error {
	src, err := app.BuildBackfillSource(cfg, source, req, serverID, log)
	if err != nil {
		return inputError(err)
	}
	run, err := app.NewFinite(cfg, store, log, source, app.BackfillCheckpointKey(source), src, req.To)
	if err != nil {
		return inputError(err)
	}
	bf := src.(ferry.Backfiller)
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-sigCtx.Done()
		if ctx.Err() == nil {
			_ = bf.PauseBackfill(context.Background(), req.Table)
			go forceExitOnSecondSignal(context.Background(), log)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- run.Run(ctx) }()
	var runErr error
	p := follow(env, log, req.Table, func() (ferry.BackfillProgress, bool) { return findProgress(bf.Backfills(), source, req.Table) },
		func(ferry.BackfillProgress, bool) bool {
			select {
			case runErr = <-done:
				return true
			default:
				return false
			}
		})
	if runErr != nil {
		return inputError(runErr)
	}
	return backfillOutcome(ctx, env, store, source, req, p)
}

// follow shows a backfill's progress, polling get, until stop says so.
func follow(env Env, log *slog.Logger, table string, get func() (ferry.BackfillProgress, bool),
	stop func(p ferry.BackfillProgress, ok bool) bool) *ferry.BackfillProgress {
	var disp *progress
	var last ferry.BackfillProgress
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		p, ok := get()
		if ok {
			last = p
			if disp == nil {
				disp = newProgress(env.Stderr, log, "rows", "backfill "+table, int64(p.ResumedRows), int64(p.Estimate))
			}
			disp.update(int64(p.Rows), int64(p.Estimate))
		}
		if stop(p, ok) {
			if p, ok := get(); ok {
				last = p
			}
			return finishDisplay(env, disp, &last)
		}
		<-t.C
	}
}

func finishDisplay(env Env, disp *progress, p *ferry.BackfillProgress) *ferry.BackfillProgress {
	if disp != nil {
		disp.finish(env.Stderr, int64(p.Rows), fmt.Sprintf("backfill of %s: %s", p.Table, p.State))
	}
	return p
}

func findProgress(all []ferry.BackfillProgress, source, table string) (ferry.BackfillProgress, bool) {
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Source == source && all[i].Table == table {
			return all[i], true
		}
	}
	return ferry.BackfillProgress{}, false
}

// backfillOutcome reports how a backfill ended; a finished standalone one
// has its saved progress removed.
func backfillOutcome(ctx context.Context, env Env, store *state.Store, source string, req ferry.BackfillRequest, p *ferry.BackfillProgress) error {
	switch p.State {
	case ferry.BackfillDone:
		if store != nil {
			if err := store.DeleteCheckpoint(ctx, app.BackfillCheckpointKey(source)); err != nil {
				return err
			}
		}
		fmt.Fprintf(env.Stderr, "backfill of %s done: %d rows in %d chunks\n", req.Table, p.Rows, p.Chunks)
		if store == nil {
			fmt.Fprintln(env.Stderr, "the running ferry delivers them like streamed changes: its /status shows what is still in flight")
		}
		return nil
	case ferry.BackfillPaused:
		return fmt.Errorf("backfill of %s paused after %d rows (last key %s): run the same command to resume", req.Table, p.Rows, p.LastKey)
	case ferry.BackfillFailed:
		return fmt.Errorf("backfill of %s failed after %d rows: %s", req.Table, p.Rows, p.Error)
	}
	return fmt.Errorf("backfill of %s stopped (%s) after %d rows", req.Table, p.State, p.Rows)
}

// liveBackfill asks the running ferry to perform the backfill and follows
// it; Ctrl-C pauses it there.
func liveBackfill(ctx context.Context, env Env, cfg *config.Config, log *slog.Logger, source string, req ferry.BackfillRequest, detach bool) error {
	if cfg.Admin.Listen == "" {
		return fmt.Errorf("a running ferry holds %s but its admin listener is off: set admin.listen to let it backfill, or stop it", cfg.State.Dir)
	}
	cl, err := adminClient(cfg, "")
	if err != nil {
		return err
	}
	if err := cl.Backfill(ctx, source, req); err != nil {
		return inputError(err)
	}
	if detach {
		fmt.Fprintf(env.Stderr, "backfill of %s started in the running ferry; GET http://%s/backfills shows its progress\n", req.Table, cfg.Admin.Listen)
		return nil
	}
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	get := func() (ferry.BackfillProgress, bool) {
		if sigCtx.Err() != nil {
			return ferry.BackfillProgress{}, false
		}
		all, err := cl.Backfills(sigCtx)
		if err != nil {
			log.Warn("cannot read backfill progress", "error", err)
			return ferry.BackfillProgress{}, false
		}
		return findProgress(all, source, req.Table)
	}
	p := follow(env, log, req.Table, get, func(p ferry.BackfillProgress, ok bool) bool {
		return sigCtx.Err() != nil || ok && (p.Finished() || p.State == ferry.BackfillPaused)
	})
	if sigCtx.Err() != nil && ctx.Err() == nil {
		if err := cl.PauseBackfill(context.Background(), source, req.Table); err != nil {
			return fmt.Errorf("pause the backfill of %s in the running ferry: %w", req.Table, err)
		}
		p = settledProgress(cl, source, req.Table, p)
		p.State = ferry.BackfillPaused
	}
	return backfillOutcome(ctx, env, nil, source, req, p)
}

// settledProgress re-reads a paused backfill's progress until its row count
// stops moving (the chunk in flight when the pause came still completes), so
// the summary names the rows actually sent. It gives up after a few seconds
// and returns the last progress it saw.
func settledProgress(cl *admin.Client, source, table string, p *ferry.BackfillProgress) *ferry.BackfillProgress {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	prev := uint64(math.MaxUint64)
	for ctx.Err() == nil {
		all, err := cl.Backfills(ctx)
		if err != nil {
			break
		}
		cur, ok := findProgress(all, source, table)
		if !ok {
			break
		}
		if cur.Rows == prev {
			return &cur
		}
		prev, p = cur.Rows, &cur
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return p
}
