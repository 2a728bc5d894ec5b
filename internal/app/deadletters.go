package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// errQuarantinedLetter refuses to re-send the dead letter of a quarantined
// table's row, which holds no decoded change.
var errQuarantinedLetter = errors.New("a row of a quarantined table, not decoded: after `ferry schema resync`, " +
	"deliver it with the `ferry replay` the resync prints (which removes this letter), or backfill the table")

// DeadLetterStore is what listing and replaying dead letters needs of the
// state store; *state.Store has it.
type DeadLetterStore interface {
	DeadLetters(ctx context.Context, fn func(state.DeadLetter) error) error
	DeleteDeadLetters(ctx context.Context, seqs ...uint64) error
}

// ListDeadLetters returns the stored dead letters, of one sink when sink is
// not empty, oldest first.
func ListDeadLetters(ctx context.Context, store DeadLetterStore, sink string) ([]state.DeadLetter, error) {
	var letters []state.DeadLetter
	err := store.DeadLetters(ctx, func(d state.DeadLetter) error {
		if sink == "" || d.Sink == sink {
			letters = append(letters, d)
		}
		return nil
	})
	return letters, err
}

// ReplayDeadLetters re-sends each letter: a sink's letter to that sink
// (built afresh from cfg); a rule's letter (the change it failed on)
// through the rules again. A letter is removed once delivered; what fails
// again stays, with nothing lost.
func ReplayDeadLetters(ctx context.Context, cfg *config.Config, store DeadLetterStore, letters []state.DeadLetter, log *slog.Logger) (admin.DeadLetterReplay, error) {
	r := replayer{ctx: ctx, cfg: cfg, sinks: map[string]ferry.Sink{}, log: log}
	defer r.close()
	var out admin.DeadLetterReplay
	var done []uint64
	for _, d := range letters {
		if err := r.replay(d); err != nil {
			out.Failed = append(out.Failed, admin.DeadLetterFailure{Seq: d.Seq, EventID: d.EventID, Error: err.Error()})
			continue
		}
		done = append(done, d.Seq)
	}
	if err := store.DeleteDeadLetters(ctx, done...); err != nil {
		return out, fmt.Errorf("delivered %d dead letter(s) but could not remove them (they may be sent again): %w", len(done), err)
	}
	out.Replayed = len(done)
	return out, nil
}

// deadLetterControl serves the dead letters of a running Ferry to the
// admin API.
type deadLetterControl struct {
	cfg   *config.Config
	store DeadLetterStore
	log   *slog.Logger
}

func (c *deadLetterControl) List(ctx context.Context, sink string) ([]state.DeadLetter, error) {
	return ListDeadLetters(ctx, c.store, sink)
}

func (c *deadLetterControl) Replay(ctx context.Context, sink string) (admin.DeadLetterReplay, error) {
	letters, err := ListDeadLetters(ctx, c.store, sink)
	if err != nil {
		return admin.DeadLetterReplay{}, err
	}
	return ReplayDeadLetters(ctx, c.cfg, c.store, letters, c.log)
}

type replayer struct {
	ctx    context.Context
	cfg    *config.Config
	sinks  map[string]ferry.Sink
	engine *transform.Worker
	log    *slog.Logger
}

func (r *replayer) replay(d state.DeadLetter) error {
	if d.Rule == quarantineRule {
		// Undecoded row images: no change to run through the rules.
		return errQuarantinedLetter
	}
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
		eng, err := BuildEngine(r.cfg)
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
		if s, err = BuildSink(r.cfg, name, r.log.With("sink", name)); err != nil {
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
