package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
)

// dlqCmd lists and replays dead letters: in the store when no ferry runs,
// else through the admin API of the ferry that holds it, with the same
// output either way.
func dlqCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return usagef("dlq needs list or replay")
	}
	c := newCommand("dlq "+args[0], env)
	sink := c.fs.String("sink", "", "only dead letters of this sink")
	asJSON := c.fs.Bool("json", false, "list: one JSON dead letter per line, with its event")
	if _, err := c.parse(args[1:], 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	list := args[0] == "list"
	store, err := state.Open(cfg.State.Dir, state.Options{ReadOnly: list})
	if list && errors.Is(err, state.ErrNoStore) {
		return listLetters(env.Stdout, nil, *asJSON)
	}
	if errors.Is(err, state.ErrLocked) {
		return liveDLQ(ctx, env, cfg, args[0], *sink, *asJSON)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	letters, err := app.ListDeadLetters(ctx, store, *sink)
	if err != nil {
		return err
	}
	if list {
		return listLetters(env.Stdout, letters, *asJSON)
	}
	out, err := app.ReplayDeadLetters(ctx, cfg, store, letters, slog.New(slog.NewTextHandler(env.Stderr, nil)))
	return reportReplay(env, out, err)
}

// liveDLQ lists or replays the dead letters of the running ferry that
// holds the store, through its admin API.
func liveDLQ(ctx context.Context, env Env, cfg *config.Config, verb, sink string, asJSON bool) error {
	if cfg.Admin.Listen == "" {
		return fmt.Errorf("a running ferry holds %s but its admin listener is off: set admin.listen to reach its dead letters, or stop it", cfg.State.Dir)
	}
	cl, err := adminClient(cfg, "")
	if err != nil {
		return err
	}
	if verb == "list" {
		letters, err := cl.DeadLetters(ctx, sink)
		if err != nil {
			return inputError(err)
		}
		return listLetters(env.Stdout, letters, asJSON)
	}
	out, err := cl.ReplayDeadLetters(ctx, sink)
	return reportReplay(env, out, inputError(err))
}

// reportReplay prints what a replay did, the same for both ways.
func reportReplay(env Env, out admin.DeadLetterReplay, err error) error {
	for _, f := range out.Failed {
		fmt.Fprintf(env.Stderr, "dead letter %d (event %s) not delivered: %s\n", f.Seq, f.EventID, f.Error)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "replayed %d dead letter(s); %d remain\n", out.Replayed, len(out.Failed))
	if len(out.Failed) > 0 {
		return fmt.Errorf("%d dead letter(s) could not be delivered", len(out.Failed))
	}
	return nil
}

func listLetters(w io.Writer, letters []state.DeadLetter, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range letters {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tSOURCE\tSINK\tRULE\tEVENT ID\tATTEMPTS\tERROR")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Source,
			dash(d.Sink), dash(d.Rule), d.EventID, d.Attempts, oneLine(d.Error, 120))
	}
	fmt.Fprintf(tw, "%d dead letter(s)\n", len(letters))
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
