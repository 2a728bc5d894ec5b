package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/signal"
	"sort"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
)

// replayCmd re-sends a range of a source's history with the original ids,
// without touching the source's checkpoint. With a ferry run holding the
// state store, that process performs it; otherwise this one does.
func replayCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("replay", env)
	f := addFiniteFlags(c)
	from := c.fs.String("from", "", "position of a transaction boundary: FILE:POS or a GTID set")
	until := c.fs.String("until", "", "FILE:POS or an RFC 3339 time to stop at (default: the end of the binlog now)")
	var tables stringList
	c.fs.Var(&tables, "table", "replay only this DB.TABLE (repeatable)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	if *f.source == "" || *from == "" {
		return usagef("replay needs --source NAME and --from POSITION")
	}
	r := app.ReplayRange{From: *from, Tables: tables, To: f.to}
	if *until != "" {
		if t, err := time.Parse(time.RFC3339Nano, *until); err == nil {
			r.UntilTime = t
		} else {
			r.Until = *until
		}
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log, err := f.logger(env, cfg)
	if err != nil {
		return err
	}
	if *f.dryRun {
		return replayDryRun(ctx, env, cfg, log, *f.source, r, uint32(*f.serverID))
	}
	store, err := state.Open(cfg.State.Dir, state.Options{})
	if errors.Is(err, state.ErrLocked) {
		return liveReplay(ctx, env, cfg, log, admin.ReplayRequest{Source: *f.source, From: r.From, Until: r.Until,
			UntilTime: r.UntilTime, Tables: r.Tables, To: r.To, ServerID: uint32(*f.serverID)})
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return standaloneReplay(ctx, env, cfg, store, log, *f.source, r, uint32(*f.serverID))
}

// replayDryRun reads the range and counts its changes per table and
// operation, sending nothing.
func replayDryRun(ctx context.Context, env Env, cfg *config.Config, log *slog.Logger, source string, r app.ReplayRange, serverID uint32) error {
	src, err := app.BuildReplaySource(cfg, source, r, serverID, nil, log)
	if err != nil {
		return inputError(err)
	}
	if err := src.Open(ctx, nil); err != nil {
		return inputError(err)
	}
	defer src.Close(context.Background())
	counts := map[string]map[ferry.Op]int{}
	total := 0
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, ferry.ErrEndOfInput) {
			break
		}
		if err != nil {
			return err
		}
		for _, c := range b.Changes {
			t := c.DB + "." + c.Table
			if counts[t] == nil {
				counts[t] = map[ferry.Op]int{}
			}
			counts[t][c.Op]++
			total++
		}
	}
	tables := make([]string, 0, len(counts))
	for t := range counts {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tCREATED\tUPDATED\tDELETED")
	for _, t := range tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", t, counts[t][ferry.OpCreate], counts[t][ferry.OpUpdate], counts[t][ferry.OpDelete])
	}
	fmt.Fprintf(tw, "dry run: %d change(s) in the range would be replayed (nothing sent)\n", total)
	return tw.Flush()
}

// standaloneReplay performs the replay in this process; Ctrl-C stops it
// after delivering what was read, and says where to continue.
func standaloneReplay(ctx context.Context, env Env, cfg *config.Config, store *state.Store, log *slog.Logger, source string, r app.ReplayRange, serverID uint32) error {
	history, closeHistory, err := app.ReplayHistory(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer closeHistory()
	src, err := app.BuildReplaySource(cfg, source, r, serverID, history, log)
	if err != nil {
		return inputError(err)
	}
	run, err := app.NewFinite(cfg, store, log, source, source+"~replay", src, r.To)
	if err != nil {
		return inputError(err)
	}
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- run.Run(sigCtx) }()
	pos := src.(app.ReplayProgress)
	disp := newProgress(env.Stderr, log, "changes", "replay", 0, 0)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			at, end := pos.ReplayPosition()
			n := int64(run.Changes())
			if err != nil {
				return inputError(err)
			}
			if sigCtx.Err() != nil && ctx.Err() == nil {
				disp.finish(env.Stderr, n, "replay interrupted at "+at)
				return fmt.Errorf("replay interrupted: everything before %s was sent; continue with --from %s", at, at)
			}
			disp.finish(env.Stderr, n, "replay done")
			fmt.Fprintf(env.Stderr, "replay of %s from %s to %s done: %d changes\n", source, r.From, end, n)
			if d, err := app.DropReplayedQuarantine(ctx, store, source, r.Tables, r.From, end); err != nil {
				log.Warn("the dead letters of the quarantined rows the replay delivered stay", "error", err)
			} else if d > 0 {
				fmt.Fprintf(env.Stderr, "%d dead letter(s) of quarantined rows delivered by the replay removed\n", d)
			}
			return nil
		case <-t.C:
			disp.update(int64(run.Changes()), 0)
		}
	}
}

// liveReplay asks the running ferry to replay and follows it; Ctrl-C
// cancels it there.
func liveReplay(ctx context.Context, env Env, cfg *config.Config, log *slog.Logger, req admin.ReplayRequest) error {
	if cfg.Admin.Listen == "" {
		return fmt.Errorf("a running ferry holds %s but its admin listener is off: set admin.listen to let it replay, or stop it", cfg.State.Dir)
	}
	cl, err := adminClient(cfg, "")
	if err != nil {
		return err
	}
	st, err := cl.StartReplay(ctx, req)
	if err != nil {
		return inputError(err)
	}
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	disp := newProgress(env.Stderr, log, "changes", "replay", 0, 0)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for !st.Finished() {
		select {
		case <-sigCtx.Done():
			if err := cl.CancelReplay(context.Background(), st.ID); err != nil {
				return fmt.Errorf("cancel the replay in the running ferry: %w", err)
			}
			disp.finish(env.Stderr, int64(st.Changes), "replay cancelled at "+st.At)
			return fmt.Errorf("replay cancelled: continue with --from %s", st.At)
		case <-t.C:
		}
		all, err := cl.Replays(sigCtx)
		if err != nil {
			continue
		}
		for _, r := range all {
			if r.ID == st.ID {
				st = r
			}
		}
		disp.update(int64(st.Changes), 0)
	}
	disp.finish(env.Stderr, int64(st.Changes), "replay "+st.State)
	if st.State != admin.ReplayDone {
		return fmt.Errorf("replay %s: %s", st.State, st.Error)
	}
	fmt.Fprintf(env.Stderr, "replay of %s from %s to %s done: %d changes\n", req.Source, req.From, st.End, st.Changes)
	return nil
}
