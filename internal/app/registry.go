package app

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/discard"
	"github.com/ferry-cdc/ferry/connectors/eventbridge"
	httpsink "github.com/ferry-cdc/ferry/connectors/http"
	"github.com/ferry-cdc/ferry/connectors/kafka"
	"github.com/ferry-cdc/ferry/connectors/kafkasource"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/connectors/stdout"
	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// deps are what connectors may need from the application.
type deps struct {
	store *state.Store
	// instance names this Ferry process stably across restarts (host and
	// state directory), so a source can recognize its own predecessor.
	instance string
	log      *slog.Logger
	tracing  *telemetry.Tracing // nil: not traced
}

// sourceType is how the application builds one kind of source.
type sourceType struct {
	newConfig func() any
	build     func(name string, cfg any, d deps) (ferry.Source, error)
	codec     ferry.PositionCodec
	// backfill and replay build the finite sources of `ferry backfill` and
	// `ferry replay` (nil for types that cannot), as a replica with serverID.
	backfill func(name string, cfg any, req ferry.BackfillRequest, serverID uint32, log *slog.Logger) (ferry.Source, error)
	replay   func(name string, cfg any, r ReplayRange, serverID uint32, store *state.Store, log *slog.Logger) (ferry.Source, error)
	// checkPosition refuses a position the source could not resume from
	// (`ferry checkpoint set`); nil for types with nothing to check.
	checkPosition func(ctx context.Context, name string, cfg any, pos ferry.Position) error
}

// sinkType is how the application builds one kind of sink.
type sinkType struct {
	newConfig func() any
	build     func(name string, cfg any, log *slog.Logger) (ferry.Sink, error)
}

// The connectors compiled into this binary. Adding one is adding a line.
var (
	sourceTypes = map[string]sourceType{
		"mysql": {
			newConfig: func() any { return mysql.DefaultConfig() },
			build: func(name string, cfg any, d deps) (ferry.Source, error) {
				s, err := mysql.New(name, cfg.(*mysql.Config), d.log)
				if err != nil {
					return nil, err
				}
				s.SetInstance(d.instance)
				if d.store != nil {
					s.SetSchemaHistory(d.store)
				}
				return s, nil
			},
			codec: mysql.Codec{},
			checkPosition: func(ctx context.Context, name string, cfg any, pos ferry.Position) error {
				return mysql.CheckPosition(ctx, name, cfg.(*mysql.Config), pos)
			},
			backfill: func(name string, cfg any, req ferry.BackfillRequest, serverID uint32, log *slog.Logger) (ferry.Source, error) {
				c := *cfg.(*mysql.Config)
				c.ServerID = serverID
				return mysql.NewBackfill(name, &c, req, log)
			},
			replay: func(name string, cfg any, r ReplayRange, serverID uint32, store *state.Store, log *slog.Logger) (ferry.Source, error) {
				c := *cfg.(*mysql.Config)
				c.ServerID = serverID
				s, err := mysql.NewReplay(name, &c, mysql.Replay(r), log)
				if err == nil && store != nil {
					s.SetSchemaHistory(store)
				}
				return s, err
			},
		},
		"kafka": {
			newConfig: func() any { return kafkasource.DefaultConfig() },
			build: func(name string, cfg any, d deps) (ferry.Source, error) {
				return kafkasource.New(name, cfg.(*kafkasource.Config), d.log)
			},
			codec: kafkasource.Codec{},
		},
		"webhook": {
			newConfig: func() any { return webhook.DefaultConfig() },
			build: func(name string, cfg any, d deps) (ferry.Source, error) {
				var opts []webhook.Option
				if d.tracing != nil {
					opts = append(opts, webhook.WithTracer(d.tracing))
				}
				return webhook.New(name, cfg.(*webhook.Config), journal{d.store}, d.log, opts...)
			},
		},
	}
	sinkTypes = map[string]sinkType{
		"stdout": {
			newConfig: func() any { return stdout.DefaultConfig() },
			build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
				return stdout.New(name, cfg.(*stdout.Config), log)
			},
		},
		"http": {
			newConfig: func() any { return httpsink.DefaultConfig() },
			build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
				return httpsink.New(name, cfg.(*httpsink.Config), log)
			},
		},
		"kafka": {
			newConfig: func() any { return kafka.DefaultConfig() },
			build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
				return kafka.New(name, cfg.(*kafka.Config), log)
			},
		},
		"eventbridge": {
			newConfig: func() any { return eventbridge.DefaultConfig() },
			build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
				// Loading the AWS configuration reads the environment and
				// files only; credentials are fetched on the first call.
				return eventbridge.New(context.Background(), name, cfg.(*eventbridge.Config), log)
			},
		},
		"discard": {
			newConfig: func() any { return discard.DefaultConfig() },
			build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
				return discard.New(name, cfg.(*discard.Config), log)
			},
		},
	}
)

// Registry exposes the compiled-in connectors to the config loader.
type Registry struct{}

var _ config.Registry = Registry{}

func (Registry) NewSourceConfig(typ string) (any, bool) {
	t, ok := sourceTypes[typ]
	if !ok {
		return nil, false
	}
	return t.newConfig(), true
}

func (Registry) NewSinkConfig(typ string) (any, bool) {
	t, ok := sinkTypes[typ]
	if !ok {
		return nil, false
	}
	return t.newConfig(), true
}

func (Registry) SourceTypes() []string { return slices.Sorted(maps.Keys(sourceTypes)) }
func (Registry) SinkTypes() []string   { return slices.Sorted(maps.Keys(sinkTypes)) }

// PositionCodec returns the codec of the named source's type.
func PositionCodec(cfg *config.Config, source string) (ferry.PositionCodec, error) {
	s, ok := cfg.Sources[source]
	if !ok {
		return nil, fmt.Errorf("no source named %q (configured: %v)", source, cfg.SourceNames())
	}
	t := sourceTypes[s.Type]
	if t.codec == nil {
		return nil, fmt.Errorf("source %q of type %s has no positions: it keeps its requests in the state store until every sink has them", source, s.Type)
	}
	return t.codec, nil
}

// CheckPosition asks the named source's server whether pos is a position
// the source can resume from (a transaction boundary).
func CheckPosition(ctx context.Context, cfg *config.Config, source string, pos ferry.Position) error {
	s, ok := cfg.Sources[source]
	if !ok {
		return fmt.Errorf("no source named %q (configured: %v)", source, cfg.SourceNames())
	}
	if t := sourceTypes[s.Type]; t.checkPosition != nil {
		return t.checkPosition(ctx, source, s.Spec, pos)
	}
	return nil
}

// BuildSink builds one configured sink by name (for `ferry dlq replay`).
func BuildSink(cfg *config.Config, name string, log *slog.Logger) (ferry.Sink, error) {
	sc, ok := cfg.Sinks[name]
	if !ok {
		return nil, fmt.Errorf("no sink named %q (configured: %v)", name, cfg.SinkNames())
	}
	return sinkTypes[sc.Type].build(name, sc.Spec, log)
}
