package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
)

// ReplayRange is a range of a source's history to read again.
type ReplayRange = ferry.ReplayRange

// ReplayProgress is implemented by replay sources: where reading stands
// and where it ends.
type ReplayProgress interface {
	ReplayPosition() (at, end string)
}

// The pipeline names of finite sources: their checkpoints never mix with
// the source's own.
func backfillKey(source string) string { return source + "~backfill" }

// BackfillCheckpointKey is the state-store key of the progress of a
// backfill run without a running Ferry.
func BackfillCheckpointKey(source string) string { return backfillKey(source) }

// finiteSourceType returns the type of a configured source.
func finiteSourceType(cfg *config.Config, source string) (*config.Source, sourceType, error) {
	sc, ok := cfg.Sources[source]
	if !ok {
		return nil, sourceType{}, ferry.Invalid("source", "no source named %q (configured: %v)", source, cfg.SourceNames())
	}
	return sc, sourceTypes[sc.Type], nil
}

// replicaID returns serverID, or a random one from the upper half of the
// range, where configured replicas rarely are: a finite source must not
// share the server_id of a running Ferry (the server would drop one).
func replicaID(serverID uint32) uint32 {
	if serverID != 0 {
		return serverID
	}
	return 1<<31 + rand.Uint32N(1<<31-1)
}

// BuildBackfillSource builds the source of a backfill without a running
// Ferry.
func BuildBackfillSource(cfg *config.Config, source string, req ferry.BackfillRequest, serverID uint32, log *slog.Logger) (ferry.Source, error) {
	sc, t, err := finiteSourceType(cfg, source)
	if err != nil {
		return nil, err
	}
	if t.backfill == nil {
		return nil, ferry.Invalid("source", "source %s is of type %s, which has no tables to backfill", source, sc.Type)
	}
	if err := checkSinks(cfg, req.To); err != nil {
		return nil, err
	}
	return t.backfill(source, sc.Spec, req, replicaID(serverID), log.With("source", source))
}

// BuildReplaySource builds the source of a replay. With store (nil: none)
// it decodes old events by what the stream recorded there when it first
// read them (which MariaDB columns were JSON).
func BuildReplaySource(cfg *config.Config, source string, r ReplayRange, serverID uint32, history mysql.SchemaHistory, log *slog.Logger) (ferry.Source, error) {
	sc, t, err := finiteSourceType(cfg, source)
	if err != nil {
		return nil, err
	}
	if t.replay == nil {
		return nil, ferry.Invalid("source", "source %s is of type %s, which has no history to replay", source, sc.Type)
	}
	if err := checkSinks(cfg, r.To); err != nil {
		return nil, err
	}
	return t.replay(source, sc.Spec, r, replicaID(serverID), history, log.With("source", source))
}

func checkSinks(cfg *config.Config, names []string) error {
	for _, n := range names {
		if _, ok := cfg.Sinks[n]; !ok {
			return ferry.Invalid("to", "no sink named %q (configured: %v)", n, cfg.SinkNames())
		}
	}
	return nil
}

// Finite runs one finite source (a backfill or replay without a running
// Ferry) through the rules to the sinks, until it ends.
type Finite struct {
	rt  *pipeline.Runtime
	key string
}

// NewFinite assembles the pipeline of src: the configured source named
// source, run under the pipeline name key, to the sinks in to (every
// configured sink when empty). The store must be held by the caller.
func NewFinite(cfg *config.Config, store *state.Store, log *slog.Logger, source, key string, src ferry.Source, to []string) (*Finite, error) {
	a, err := assemble(cfg, store, log, nil)
	if err != nil {
		return nil, err
	}
	if err := a.addSource(source, key, src); err != nil {
		return nil, err
	}
	if len(to) == 0 {
		to = cfg.SinkNames()
	}
	if err := a.addSinks(to); err != nil {
		return nil, err
	}
	rt, err := pipeline.New(a.pcfg)
	if err != nil {
		return nil, fmt.Errorf("assemble: %w", err)
	}
	return &Finite{rt: rt, key: key}, nil
}

// Run runs until the source ended and everything it read was delivered or
// dead-lettered (nil), ctx was cancelled (nil, after a drain), or a failure.
func (f *Finite) Run(ctx context.Context) error { return f.rt.Run(ctx) }

// Changes counts the changes read so far.
func (f *Finite) Changes() uint64 { return f.rt.Stats().Source(f.key).Read.Load() }
