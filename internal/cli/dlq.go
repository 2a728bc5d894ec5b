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

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// dlqCmd lists and replays dead letters. Like the checkpoint commands it
// needs the state store to itself: stop `ferry run` first.
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
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("%w: dlq commands need the store to themselves; stop `ferry run` first", err)
		}
		return err
	}
	defer store.Close()
	var letters []state.DeadLetter
	err = store.DeadLetters(ctx, func(d state.DeadLetter) error {
		if *sink == "" || d.Sink == *sink {
			letters = append(letters, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if list {
		return listLetters(env.Stdout, letters, *asJSON)
	}
	return replayLetters(ctx, env, cfg, store, letters)
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

// replayLetters re-sends each letter: a sink's letter to that sink; a
// rule's letter (the change it failed on) through the rules again. A letter
// is removed once delivered; what fails again stays, with nothing lost.
func replayLetters(ctx context.Context, env Env, cfg *config.Config, store *state.Store, letters []state.DeadLetter) error {
	r := replayer{ctx: ctx, cfg: cfg, sinks: map[string]ferry.Sink{}, log: slog.New(slog.NewTextHandler(env.Stderr, nil))}
	defer r.close()
	var done []uint64
	failed := 0
	for _, d := range letters {
		if err := r.replay(d); err != nil {
			failed++
			fmt.Fprintf(env.Stderr, "dead letter %d (event %s) not delivered: %v\n", d.Seq, d.EventID, err)
			continue
		}
		done = append(done, d.Seq)
	}
	if err := store.DeleteDeadLetters(ctx, done...); err != nil {
		return fmt.Errorf("delivered %d dead letter(s) but could not remove them (they may be sent again): %w", len(done), err)
	}
	fmt.Fprintf(env.Stdout, "replayed %d dead letter(s); %d remain\n", len(done), failed)
	if failed > 0 {
		return fmt.Errorf("%d dead letter(s) could not be delivered", failed)
	}
	return nil
}

type replayer struct {
	ctx    context.Context
	cfg    *config.Config
	sinks  map[string]ferry.Sink
	engine *transform.Worker
	log    *slog.Logger
}

func (r *replayer) replay(d state.DeadLetter) error {
	if d.Sink != "" {
		var e event.Event
		if err := json.Unmarshal(d.Event, &e); err != nil {
			return fmt.Errorf("stored event is unreadable: %w", err)
		}
		return r.deliver(d.Sink, &e)
	}
	return r.rerun(d)
}

// rerun passes a change a rule failed on through the rules again.
func (r *replayer) rerun(d state.DeadLetter) error {
	if r.engine == nil {
		eng, err := app.BuildEngine(r.cfg)
		if err != nil {
			return err
		}
		r.engine = eng.NewWorker()
	}
	changes, err := transform.ParseSamples(strings.NewReader(string(d.Event)), d.Source)
	if err != nil || len(changes) != 1 {
		return fmt.Errorf("stored change is unreadable: %v", err)
	}
	for _, o := range r.engine.Apply(&changes[0], nil) {
		if o.Err != nil {
			return o.Err
		}
		for _, sink := range o.To {
			if err := r.deliver(sink, o.Event); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *replayer) deliver(name string, e *event.Event) error {
	s, ok := r.sinks[name]
	if !ok {
		var err error
		if s, err = app.BuildSink(r.cfg, name, r.log.With("sink", name)); err != nil {
			return err
		}
		if err := s.Open(r.ctx); err != nil {
			return err
		}
		r.sinks[name] = s
	}
	ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
	defer cancel()
	if err := s.Write(ctx, []*event.Event{e}); err != nil {
		var be *ferry.BatchError
		if errors.As(err, &be) && be.Failed(0) != nil {
			return be.Failed(0)
		}
		return err
	}
	return nil
}

func (r *replayer) close() {
	for _, s := range r.sinks {
		_ = s.Close(context.Background())
	}
}
