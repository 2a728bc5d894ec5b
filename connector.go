package ferry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// SinkType is a registered kind of sink, whatever its configuration type.
//
// A connector package exports one registration value, a SinkSpec or a
// SourceSpec of its configuration type, and the application lists it in
// one line (internal/app/registry.go). Its configuration struct declares
// its keys with ferry tags (see FieldRules), from which the loader takes
// defaults, validation, the JSON Schema and the docs; connectors/conntest
// is the suite it must pass.
// A SinkSpec is one; the application may assert optional interfaces on
// the values NewConfig returns (configuration-level checks it runs).
type SinkType interface {
	// TypeName is the `type:` of its blocks.
	TypeName() string
	// NewConfig returns a fresh configuration with its defaults.
	NewConfig() any
	// BuildSink builds a sink from a configuration NewConfig returned,
	// decoded and checked.
	BuildSink(name string, cfg any, env SinkEnv) (Sink, error)
}

// SinkEnv is what the application gives a sink it builds.
type SinkEnv struct {
	Log *slog.Logger
}

// SinkSpec registers a sink whose configuration is a C.
type SinkSpec[C any] struct {
	Name  string
	Build func(name string, cfg *C, env SinkEnv) (Sink, error)
}

// TypeName implements SinkType.
func (s SinkSpec[C]) TypeName() string { return s.Name }

// NewConfig implements SinkType: a *C with its tags' defaults.
func (s SinkSpec[C]) NewConfig() any { return Defaults[C]() }

// BuildSink implements SinkType.
func (s SinkSpec[C]) BuildSink(name string, cfg any, env SinkEnv) (Sink, error) {
	c, err := configOf[C](s.Name, cfg)
	if err != nil {
		return nil, err
	}
	return s.Build(name, c, env)
}

func configOf[C any](typ string, cfg any) (*C, error) {
	c, ok := cfg.(*C)
	if !ok {
		return nil, fmt.Errorf("%s connector: configuration of type %T, want %T", typ, cfg, c)
	}
	return c, nil
}

// SourceEnv is what the application gives a source it builds.
type SourceEnv struct {
	Log *slog.Logger
	// Instance names this Ferry process stably across restarts, so a
	// source can recognize its own predecessor.
	Instance string
	// Services are what the application offers (a state store, a
	// tracer); a source takes those it needs with Service.
	Services []any
}

// Service returns the first of env's services that is a T.
func Service[T any](env SourceEnv) (T, bool) {
	for _, s := range env.Services {
		if t, ok := s.(T); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

// ReplayRange is a range of a source's history to read again.
type ReplayRange struct {
	From      string    // position of a transaction boundary
	Until     string    // position to stop at; empty: the end at start
	UntilTime time.Time // stop before the first change committed after it
	Tables    []string  // DB.TABLE; empty: every captured table
	To        []string  // sinks; empty: the rules' routing
}

// SourceType is a registered kind of source, whatever its configuration
// type. The finite modes and position checks are optional: a SourceSpec
// leaves them nil for a source without positions or history.
type SourceType interface {
	TypeName() string
	NewConfig() any
	BuildSource(name string, cfg any, env SourceEnv) (Source, error)
	// Codec converts the source's positions for `ferry checkpoint`; nil
	// for sources without positions.
	Codec() PositionCodec
	// CanBackfill and CanReplay report whether the type has tables to
	// backfill and history to replay.
	CanBackfill() bool
	CanReplay() bool
	// BuildBackfill and BuildReplay build the finite sources of `ferry
	// backfill` and `ferry replay`, as a replica with serverID; they fail
	// with ErrUnsupported for a type that cannot.
	BuildBackfill(name string, cfg any, req BackfillRequest, serverID uint32, env SourceEnv) (Source, error)
	BuildReplay(name string, cfg any, r ReplayRange, serverID uint32, env SourceEnv) (Source, error)
	// CheckPosition refuses a position the source could not resume from
	// (`ferry checkpoint set`).
	CheckPosition(ctx context.Context, name string, cfg any, pos Position) error
}

// SourceSpec registers a source whose configuration is a C. Only Name and
// Build are required.
type SourceSpec[C any] struct {
	Name  string
	Build func(name string, cfg *C, env SourceEnv) (Source, error)
	// PositionCodec, when set, converts the source's positions.
	PositionCodec PositionCodec
	// Backfill and Replay, when set, build its finite sources.
	Backfill func(name string, cfg *C, req BackfillRequest, serverID uint32, env SourceEnv) (Source, error)
	Replay   func(name string, cfg *C, r ReplayRange, serverID uint32, env SourceEnv) (Source, error)
	// CheckPositionFunc, when set, checks a position set by hand.
	CheckPositionFunc func(ctx context.Context, name string, cfg *C, pos Position) error
}

// TypeName implements SourceType.
func (s SourceSpec[C]) TypeName() string { return s.Name }

// NewConfig implements SourceType: a *C with its tags' defaults.
func (s SourceSpec[C]) NewConfig() any { return Defaults[C]() }

// Codec implements SourceType.
func (s SourceSpec[C]) Codec() PositionCodec { return s.PositionCodec }

// BuildSource implements SourceType.
func (s SourceSpec[C]) BuildSource(name string, cfg any, env SourceEnv) (Source, error) {
	c, err := configOf[C](s.Name, cfg)
	if err != nil {
		return nil, err
	}
	return s.Build(name, c, env)
}

// CanBackfill implements SourceType.
func (s SourceSpec[C]) CanBackfill() bool { return s.Backfill != nil }

// CanReplay implements SourceType.
func (s SourceSpec[C]) CanReplay() bool { return s.Replay != nil }

// BuildBackfill implements SourceType.
func (s SourceSpec[C]) BuildBackfill(name string, cfg any, req BackfillRequest, serverID uint32, env SourceEnv) (Source, error) {
	if s.Backfill == nil {
		return nil, fmt.Errorf("%s source: backfill: %w", s.Name, errors.ErrUnsupported)
	}
	c, err := configOf[C](s.Name, cfg)
	if err != nil {
		return nil, err
	}
	return s.Backfill(name, c, req, serverID, env)
}

// BuildReplay implements SourceType.
func (s SourceSpec[C]) BuildReplay(name string, cfg any, r ReplayRange, serverID uint32, env SourceEnv) (Source, error) {
	if s.Replay == nil {
		return nil, fmt.Errorf("%s source: replay: %w", s.Name, errors.ErrUnsupported)
	}
	c, err := configOf[C](s.Name, cfg)
	if err != nil {
		return nil, err
	}
	return s.Replay(name, c, r, serverID, env)
}

// CheckPosition implements SourceType.
func (s SourceSpec[C]) CheckPosition(ctx context.Context, name string, cfg any, pos Position) error {
	if s.CheckPositionFunc == nil {
		return nil
	}
	c, err := configOf[C](s.Name, cfg)
	if err != nil {
		return err
	}
	return s.CheckPositionFunc(ctx, name, c, pos)
}

// AsSink turns a constructor's (*T, error) into (Sink, error), so that a
// failed constructor gives a nil Sink rather than a typed nil.
func AsSink[S Sink](s S, err error) (Sink, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AsSource is AsSink for sources.
func AsSource[S Source](s S, err error) (Source, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
