// Package app assembles a configured Ferry: it builds the sources, sinks and
// transform engine a configuration names, opens the state store, and runs
// the pipeline with the admin endpoints beside it.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/admin"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/telemetry"
	"github.com/ferry-cdc/ferry/transform"
)

// Load reads and validates configuration files with the compiled-in
// connectors, including checks across sources.
func Load(paths []string) (*config.Config, error) {
	cfg, err := config.Load(paths, Registry{})
	if err != nil {
		return nil, err
	}
	if errs := append(checkClaims(cfg), checkExactlyOnce(cfg)...); len(errs) > 0 {
		return nil, errs
	}
	excludeCheckpointTable(cfg)
	return cfg, nil
}

// checkClaims refuses two sources claiming one resource (see
// ferry.Claimer), such as one path on one webhook listener (they may share
// the listener).
func checkClaims(cfg *config.Config) config.Errors {
	var errs config.Errors
	seen := map[string]string{}
	for _, name := range cfg.SourceNames() {
		c, ok := cfg.Sources[name].Spec.(ferry.Claimer)
		if !ok {
			continue
		}
		for _, claim := range c.Claims() {
			if other, dup := seen[claim.Resource]; dup {
				errs = append(errs, cfg.Errorf("sources."+name+"."+claim.Field, "source %s already %s", other, claim.Use))
				continue
			}
			seen[claim.Resource] = name
		}
	}
	return errs
}

// BuildEngine compiles the transform rules and defaults of cfg. Rule
// problems come back as config.Errors at the line of the expression.
func BuildEngine(cfg *config.Config) (*transform.Engine, error) {
	return buildEngine(cfg, "")
}

// BuildRuleEngine compiles only the named rule, without default sinks: what
// `ferry transform test --rule` evaluates.
func BuildRuleEngine(cfg *config.Config, rule string) (*transform.Engine, error) {
	for _, t := range cfg.Transforms {
		if t.Name == rule {
			return buildEngine(cfg, rule)
		}
	}
	names := make([]string, len(cfg.Transforms))
	for i, t := range cfg.Transforms {
		names[i] = t.Name
	}
	return nil, fmt.Errorf("no rule named %q (configured: %s)", rule, strings.Join(names, ", "))
}

func buildEngine(cfg *config.Config, only string) (*transform.Engine, error) {
	var rules []transform.Rule
	for i, t := range cfg.Transforms {
		if only != "" && t.Name != only {
			continue
		}
		r := *t
		r.Path = fmt.Sprintf("transforms[%d]", i)
		rules = append(rules, r)
	}
	if errs := checkRuleHeaders(cfg); len(errs) > 0 {
		return nil, errs
	}
	opts := transform.Options{TypePrefix: cfg.Defaults.TypePrefix, DefaultTo: cfg.Defaults.To, Rules: rules}
	if only != "" {
		opts.DefaultTo = nil
	}
	eng, err := transform.New(opts)
	var ce transform.CompileErrors
	if errors.As(err, &ce) {
		out := make(config.Errors, len(ce))
		for i, e := range ce {
			out[i] = cfg.Errorf(e.Path, "rule %s: %s", e.Rule, e.Msg)
		}
		return nil, out
	}
	return eng, err
}

// RunOptions are the choices `ferry run` makes beyond the configuration.
type RunOptions struct {
	// Capture receives every change read as a sample line (--capture).
	Capture io.Writer
	// Version is the build's version, for ferry_build_info.
	Version string
	// Reload delivers configurations validated by CheckReload (SIGHUP);
	// each replaces the running pipeline. Nil: never reloaded.
	Reload <-chan *config.Config

	tracing *telemetry.Tracing // set by Run when tracing is configured
}

// Run runs cfg until ctx is cancelled (a clean stop, nil) or a fatal error.
// The admin listener serves for the whole run; the pipeline is rebuilt on
// each configuration received on opts.Reload and, with ha, runs only while
// this replica holds the lease (see supervisor).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, opts RunOptions) error {
	store, err := state.Open(cfg.State.Dir, state.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	sh, err := openShared(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer sh.Close()
	if cfg.Tracing.Enabled() {
		t, err := telemetry.NewTracing(ctx, cfg.Tracing, opts.Version, log)
		if err != nil {
			return err
		}
		defer shutdownTracing(t, log)
		opts.tracing = t
	}
	metrics := telemetry.New(opts.Version)
	sup := newSupervisor(cfg, store, sh, metrics, log, opts)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	adminErr := make(chan error, 1)
	if cfg.Admin.Listen != "" {
		srv, err := listenAdmin(cfg.Admin, admin.Options{Metrics: metrics, Control: &sup.live, Log: log, Role: sup.role.get,
			DeadLetters: &deadLetterControl{cfg: cfg, store: store, log: log},
			Schemas:     &schemaControl{store: store, live: &sup.live},
			Redact:      cfg.Redactor().Redact})
		if err != nil {
			return err
		}
		go func() { adminErr <- srv.Serve(runCtx) }()
	}
	runErr := sup.run(runCtx)
	cancel()
	if cfg.Admin.Listen != "" {
		if err := <-adminErr; err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("admin server", "error", err)
		}
	}
	return runErr
}

// assembly is a pipeline being put together from the configuration.
type assembly struct {
	cfg     *config.Config
	store   *state.Store
	log     *slog.Logger
	pcfg    pipeline.Config
	sources map[string]ferry.Source // by configured name
	tracing *telemetry.Tracing      // nil: nothing traced
	// history is the shared schema history store (nil: store keeps it).
	history mysql.SchemaHistory
}

// schemaHistory is where the assembly's mysql sources keep their schema
// histories: the shared checkpoint table's store, else the state store.
func (a *assembly) schemaHistory() mysql.SchemaHistory {
	if a.history != nil {
		return a.history
	}
	if a.store == nil {
		return nil
	}
	return a.store
}

// trace makes the assembly's webhook sources and sink deliveries record
// spans with t; nil leaves tracing off.
func (a *assembly) trace(t *telemetry.Tracing) {
	if t != nil {
		a.tracing, a.pcfg.Tracer = t, t
	}
}

// shutdownTracing flushes the spans still queued, for a bounded time.
func shutdownTracing(t *telemetry.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("spans lost at shutdown", "component", "tracing", "error", err)
	}
}

func assemble(cfg *config.Config, store *state.Store, log *slog.Logger, capture io.Writer) (*assembly, error) {
	engine, err := BuildEngine(cfg)
	if err != nil {
		return nil, err
	}
	return &assembly{cfg: cfg, store: store, log: log, sources: map[string]ferry.Source{}, pcfg: pipeline.Config{
		Engine: engine, Store: store, Logger: log,
		MaxInFlight:        cfg.Pipeline.MaxInFlight,
		MaxInFlightBytes:   int64(cfg.Pipeline.MaxInFlightBytes),
		CheckpointInterval: cfg.State.CheckpointInterval,
		ShutdownTimeout:    cfg.Pipeline.ShutdownTimeout,
		SinkLinger:         cfg.Pipeline.SinkLinger,
		Capture:            capture,
		DeadLetterSink:     cfg.Pipeline.DeadLetterSink,
		Redact:             cfg.Redactor().Redact,
	}}, nil
}

// addSource adds the configured source name under the pipeline name
// key (its checkpoint key); src, when set, replaces the configured build.
func (a *assembly) addSource(name, key string, src ferry.Source) error {
	if src == nil {
		sc := a.cfg.Sources[name]
		var err error
		src, err = sourceTypes[sc.Type].build(name, sc.Spec, deps{store: a.store, history: a.history, instance: instanceID(a.cfg),
			log: a.log.With("source", name), tracing: a.tracing})
		if err != nil {
			return fmt.Errorf("source %s: %w", name, err)
		}
	}
	a.sources[name] = src
	a.pcfg.Sources = append(a.pcfg.Sources, pipeline.SourceSpec{Name: name, Key: key, Source: src})
	return nil
}

func (a *assembly) addSinks(names []string) error {
	for _, name := range names {
		sc, ok := a.cfg.Sinks[name]
		if !ok {
			return ferry.Invalid("to", "no sink named %q (configured: %s)", name, strings.Join(a.cfg.SinkNames(), ", "))
		}
		sink, err := sinkTypes[sc.Type].build(name, sc.Spec, a.log.With("sink", name))
		if err != nil {
			return fmt.Errorf("sink %s: %w", name, err)
		}
		a.pcfg.Sinks = append(a.pcfg.Sinks, pipeline.SinkSpec{Name: name, Sink: sink, Retry: sc.Retry})
	}
	return nil
}

// instanceID names this Ferry process stably across its restarts: the host
// and the state directory (which one process at a time holds). The replicas
// of an HA group share one name, the group's: a new leader then takes the
// registration of its deposed predecessor over (the server drops the old
// binlog connection, which fences it further) instead of refusing to start,
// while a Ferry outside the group with the same server_id is still refused.
func instanceID(cfg *config.Config) string {
	if cfg.HA != nil {
		sum := sha256.Sum256([]byte("ha\x00" + cfg.HA.Name))
		return "ha-" + hex.EncodeToString(sum[:4])
	}
	stateDir := cfg.State.Dir
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	sum := sha256.Sum256([]byte(host + "\x00" + stateDir))
	return hex.EncodeToString(sum[:4])
}

// listenAdmin binds the admin listener as cfg configures it.
func listenAdmin(cfg config.Admin, opts admin.Options) (*admin.Server, error) {
	opts.Addr, opts.MaxLag = cfg.Listen, cfg.MaxLag
	opts.Token, opts.MetricsPublic, opts.Pprof = cfg.Token.Reveal(), cfg.MetricsPublic, cfg.Pprof
	if cfg.TLS.Enabled() {
		t, err := admin.ServerTLS(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile)
		if err != nil {
			return nil, err
		}
		opts.TLS = t
	}
	if cfg.Exposed() {
		opts.Log.Warn("the admin listener is reachable from other hosts without admin.token: backfills, replays and dead letters answer 403 there",
			"listen", cfg.Listen)
	}
	return admin.Listen(opts)
}
