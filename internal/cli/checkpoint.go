package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/state"
)

// checkpointCmd shows, sets or resets a source's persisted position. It
// opens the state store exclusively, so it refuses to run beside a live
// `ferry run` on the same state.dir instead of racing it.
func checkpointCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usagef("checkpoint needs show, set or reset")
	}
	action := args[0]
	c := newCommand("checkpoint "+action, env)
	source := c.fs.String("source", "", "source name")
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
	store, err := state.Open(cfg.State.Dir, state.Options{})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("%w: checkpoint commands need the store to themselves; stop `ferry run` first", err)
		}
		return err
	}
	defer store.Close()

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
