package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/state"
)

// checkpointCmd shows, sets or resets a source's persisted position in the
// configured checkpoint store. The embedded store is opened exclusively, so
// it refuses to run beside a live `ferry run` on the same state.dir instead
// of racing it; a mysql table shared by ha replicas is written only after
// taking the mysql lease, so never beside a streaming replica.
func checkpointCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usagef("checkpoint needs show, set or reset")
	}
	action := args[0]
	c := newCommand("checkpoint "+action, env)
	source := c.fs.String("source", "", "source name")
	unchecked := c.fs.Bool("unchecked", false, "set: do not ask the server whether POSITION begins a transaction (when it is unreachable)")
	rest, err := c.parse(args[1:], 1)
	if err != nil {
		return err
	}
	if *source == "" {
		return usagef("checkpoint %s needs --source NAME", action)
	}
	switch {
	case action == "set" && len(rest) != 1:
		return usagef("checkpoint set needs one POSITION (FILE:POS or a GTID set)")
	case action != "set" && len(rest) != 0:
		return usagef("checkpoint %s takes no POSITION", action)
	case action != "show" && action != "set" && action != "reset":
		return usagef("unknown checkpoint action %q: want show, set or reset", action)
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	codec, err := app.PositionCodec(cfg, *source)
	if err != nil {
		return usagef("%v", err)
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, closeStore, err := app.OpenCheckpoints(ctx, cfg, action != "show", 3*time.Second, log)
	if errors.Is(err, state.ErrNoStore) {
		fmt.Fprintf(env.Stdout, "%s: no checkpoint (no state store yet; starts at its configured start)\n", *source)
		return nil
	}
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("%w: checkpoint commands need the store to themselves; stop `ferry run` first", err)
		}
		return err
	}
	defer closeStore()

	switch action {
	case "show":
		cp, ok, err := store.LoadCheckpoint(ctx, *source)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintf(env.Stdout, "%s: no checkpoint (starts at its configured start)\n", *source)
			return nil
		}
		text, err := codec.FormatPosition(cp.Position)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: %s (saved %s)\n", *source, text, cp.SavedAt.UTC().Format("2006-01-02T15:04:05Z"))
	case "set":
		pos, err := codec.ParsePosition(rest[0])
		if err != nil {
			return usagef("%v", err)
		}
		if !*unchecked {
			if err := app.CheckPosition(ctx, cfg, *source, pos); err != nil {
				return err
			}
		}
		if err := store.SaveCheckpoint(ctx, *source, pos); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: checkpoint set to %s\n", *source, rest[0])
	case "reset":
		if err := store.DeleteCheckpoint(ctx, *source); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s: checkpoint removed (next run starts at its configured start)\n", *source)
	}
	return nil
}
