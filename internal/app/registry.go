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
	"github.com/ferry-cdc/ferry/connectors/nats"
	"github.com/ferry-cdc/ferry/connectors/stdout"
	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// deps are what connectors may need from the application.
type deps struct {
	store *state.Store
	// history keeps mysql sources' schema histories; nil: store does. Under
	// a shared checkpoint table it is that table's store, so a new leader
	// decodes with the history its predecessor recorded.
	history mysql.SchemaHistory
	// instance names this Ferry process stably across restarts (host and
	// state directory), so a source can recognize its own predecessor.
	instance string
	log      *slog.Logger
	tracing  *telemetry.Tracing // nil: not traced
}

// env is what a source is built with: the application's services, which
// each connector takes by the interface it needs (ferry.Service).
func (d deps) env() ferry.SourceEnv {
	services := []any{journal{d.store}}
	if d.history != nil { // before store, which is a SchemaHistory too
		services = append(services, d.history)
	}
	if d.store != nil {
		services = append(services, d.store, quarantineLetters{d.store})
	}
	if d.tracing != nil {
		services = append(services, d.tracing)
	}
	return ferry.SourceEnv{Log: d.log, Instance: d.instance, Services: services}
}

// The connectors compiled into this binary: adding one is adding a line.
var (
	sources = []ferry.SourceType{
		mysql.Connector,
		webhook.Connector,
		kafkasource.Connector,
	}
	sinks = []ferry.SinkType{
		stdout.Connector,
		httpsink.Connector,
		kafka.Connector,
		eventbridge.Connector,
		discard.Connector,
		nats.Connector,
	}
)

// sourceType is how the application builds one kind of source.
type sourceType struct {
	ferry.SourceType
	build func(name string, cfg any, d deps) (ferry.Source, error)
	// backfill and replay build the finite sources of `ferry backfill` and
	// `ferry replay` (nil for types that cannot), as a replica with serverID.
	backfill func(name string, cfg any, req ferry.BackfillRequest, serverID uint32, log *slog.Logger) (ferry.Source, error)
	replay   func(name string, cfg any, r ReplayRange, serverID uint32, history mysql.SchemaHistory, log *slog.Logger) (ferry.Source, error)
}

// sinkType is how the application builds one kind of sink.
type sinkType struct {
	ferry.SinkType
	build func(name string, cfg any, log *slog.Logger) (ferry.Sink, error)
}

var (
	sourceTypes = sourceTypesOf(sources)
	sinkTypes   = sinkTypesOf(sinks)
)

func sourceTypesOf(types []ferry.SourceType) map[string]sourceType {
	out := map[string]sourceType{}
	for _, t := range types {
		st := sourceType{SourceType: t, build: func(name string, cfg any, d deps) (ferry.Source, error) {
			return t.BuildSource(name, cfg, d.env())
		}}
		if t.CanBackfill() {
			st.backfill = func(name string, cfg any, req ferry.BackfillRequest, serverID uint32, log *slog.Logger) (ferry.Source, error) {
				return t.BuildBackfill(name, cfg, req, serverID, deps{log: log}.env())
			}
		}
		if t.CanReplay() {
			st.replay = func(name string, cfg any, r ReplayRange, serverID uint32, history mysql.SchemaHistory, log *slog.Logger) (ferry.Source, error) {
				return t.BuildReplay(name, cfg, r, serverID, deps{history: history, log: log}.env())
			}
		}
		out[t.TypeName()] = st
	}
	return out
}

func sinkTypesOf(types []ferry.SinkType) map[string]sinkType {
	out := map[string]sinkType{}
	for _, t := range types {
		out[t.TypeName()] = sinkType{SinkType: t, build: func(name string, cfg any, log *slog.Logger) (ferry.Sink, error) {
			return t.BuildSink(name, cfg, ferry.SinkEnv{Log: log})
		}}
	}
	return out
}

// Registry exposes the compiled-in connectors to the config loader.
type Registry struct{}

var _ config.Registry = Registry{}

func (Registry) NewSourceConfig(typ string) (any, bool) {
	t, ok := sourceTypes[typ]
	if !ok {
		return nil, false
	}
	return t.NewConfig(), true
}

func (Registry) NewSinkConfig(typ string) (any, bool) {
	t, ok := sinkTypes[typ]
	if !ok {
		return nil, false
	}
	return t.NewConfig(), true
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
	if t.SourceType == nil || t.Codec() == nil {
		return nil, fmt.Errorf("source %q of type %s has no positions: it keeps its requests in the state store until every sink has them", source, s.Type)
	}
	return t.Codec(), nil
}

// CheckPosition asks the named source's server whether pos is a position
// the source can resume from (a transaction boundary).
func CheckPosition(ctx context.Context, cfg *config.Config, source string, pos ferry.Position) error {
	s, ok := cfg.Sources[source]
	if !ok {
		return fmt.Errorf("no source named %q (configured: %v)", source, cfg.SourceNames())
	}
	if t, ok := sourceTypes[s.Type]; ok {
		return t.CheckPosition(ctx, source, s.Spec, pos)
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
