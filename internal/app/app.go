// Package app assembles a configured Ferry: it builds the sources, sinks and
// transform engine a configuration names, opens the state store, and runs
// the pipeline with the admin endpoints beside it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/transform"
)

// Load reads and validates configuration files with the compiled-in
// connectors.
func Load(paths []string) (*config.Config, error) {
	return config.Load(paths, Registry{})
}

// BuildEngine compiles the transform rules and defaults of cfg.
func BuildEngine(cfg *config.Config) (*transform.Engine, error) {
	return transform.New(transform.Options{TypePrefix: cfg.Defaults.TypePrefix, DefaultTo: cfg.Defaults.To})
}

// Run runs cfg until ctx is cancelled (a clean stop, nil) or a fatal error.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	engine, err := BuildEngine(cfg)
	if err != nil {
		return err
	}
	store, err := state.Open(cfg.State.Dir, state.Options{})
	if err != nil {
		return err
	}
	defer store.Close()

	pcfg := pipeline.Config{
		Engine: engine, Store: store, Logger: log,
		MaxInFlight:        cfg.Pipeline.MaxInFlight,
		CheckpointInterval: cfg.State.CheckpointInterval,
		ShutdownTimeout:    cfg.Pipeline.ShutdownTimeout,
	}
	for _, name := range cfg.SourceNames() {
		sc := cfg.Sources[name]
		src, err := sourceTypes[sc.Type].build(name, sc.Spec, log.With("source", name))
		if err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
		pcfg.Sources = append(pcfg.Sources, pipeline.SourceSpec{Name: name, Source: src})
	}
	for _, name := range cfg.SinkNames() {
		sc := cfg.Sinks[name]
		sink, err := sinkTypes[sc.Type].build(name, sc.Spec, log.With("sink", name))
		if err != nil {
			return fmt.Errorf("sink %s: %w", name, err)
		}
		pcfg.Sinks = append(pcfg.Sinks, pipeline.SinkSpec{Name: name, Sink: sink, Retry: pipeline.RetryPolicy{
			InitialBackoff: sc.Retry.InitialBackoff, MaxBackoff: sc.Retry.MaxBackoff, MaxAttempts: sc.Retry.MaxAttempts}})
	}
	rt, err := pipeline.New(pcfg)
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	adminErr := make(chan error, 1)
	if cfg.Admin.Listen != "" {
		srv, err := admin.Listen(cfg.Admin.Listen, rt.Stats(), log)
		if err != nil {
			return err
		}
		go func() { adminErr <- srv.Serve(runCtx) }()
	}
	runErr := rt.Run(runCtx)
	cancel()
	if cfg.Admin.Listen != "" {
		if err := <-adminErr; err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("admin server", "error", err)
		}
	}
	return runErr
}
