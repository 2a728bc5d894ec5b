package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/procs"
)

func runCmd(ctx context.Context, args []string, env Env) error {
	c := newCommand("run", env)
	level := c.fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	format := c.fs.String("log-format", "", "text or json (overrides log.format)")
	capture := c.fs.String("capture", "", "append every change read to this file as sample JSON lines")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	log, err := newLogger(redactingWriter{env.Stderr, cfg.Redactor()}, pick(*level, cfg.Log.Level), pick(*format, cfg.Log.Format))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go forceExitOnSecondSignal(ctx, log)
	if procs.Enabled(os.Getenv) {
		go procs.New(runtime.GOMAXPROCS(0), log).Run(ctx)
	}
	log.Info("ferry starting", "version", env.Version, "config", strings.Join(c.files, ","),
		"sources", cfg.SourceNames(), "sinks", cfg.SinkNames())
	opts := app.RunOptions{Version: env.Version}
	if *capture != "" {
		f, err := os.OpenFile(*capture, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return usagef("--capture: %v", err)
		}
		defer f.Close()
		opts.Capture = f
		log.Info("capturing changes as samples", "file", *capture)
	}
	reloads := make(chan *config.Config)
	opts.Reload = reloads
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP) // before the first SIGHUP could kill the process
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, hup, c.files, cfg, reloads, log)
	if err := app.Run(ctx, cfg, log, opts); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// A signal during startup: nothing was read, so stopping is clean.
			log.Info("ferry stopped before it started", "reason", "signal during startup")
			return nil
		}
		// Name the source or sink that failed, as every error line does.
		log.Error("ferry stopped", append([]any{"error", err}, pipeline.LogAttrs(err)...)...)
		return redactedError{err, cfg.Redactor()}
	}
	log.Info("ferry stopped")
	return nil
}

// reloadOnHangup reads the same -c files again on every SIGHUP. A
// configuration with any error is logged (file:line, never a secret value)
// and ignored: the running one goes on. A valid one is handed to the
// running pipeline, which swaps itself over to it.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, files []string, cur *config.Config, out chan<- *config.Config, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		log.Info("reload: SIGHUP received; reading the configuration again", "config", strings.Join(files, ","))
		next, err := loadForReload(files, cur)
		if err != nil {
			log.Error("reload: configuration rejected; still running the previous one", "error", err)
			continue
		}
		select {
		case out <- next:
			cur = next
		case <-ctx.Done():
			return
		}
	}
}

func loadForReload(files []string, cur *config.Config) (*config.Config, error) {
	next, err := app.Load(files)
	if err != nil {
		return nil, err
	}
	if _, err := app.BuildEngine(next); err != nil {
		return nil, err
	}
	if err := app.CheckReload(cur, next); err != nil {
		return nil, err
	}
	return next, nil
}

// forceExitOnSecondSignal: the first signal drains gracefully (bounded by
// pipeline.shutdown_timeout); a second one means the operator wants out now.
// Nothing is lost either way: unacknowledged changes are read again.
func forceExitOnSecondSignal(ctx context.Context, log *slog.Logger) {
	<-ctx.Done()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
	log.Warn("second signal: exiting without draining")
	os.Exit(ExitFailure)
}

// redactingWriter removes the configuration's expanded secrets from what
// is written through it; slog writes each record in one Write, so no
// secret is split between two.
type redactingWriter struct {
	w io.Writer
	r config.Redactor
}

func (w redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.Redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactedError is err with its text redacted; errors.Is and As still
// see err.
type redactedError struct {
	err error
	r   config.Redactor
}

func (e redactedError) Error() string { return e.r.Redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

func pick(flagValue, configValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return configValue
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("invalid log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usagef("invalid log format %q: want text or json", format)
}

func validateCmd(args []string, env Env) error {
	c := newCommand("validate", env)
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if _, err := app.BuildEngine(cfg); err != nil {
		return err
	}
	if cfg.Admin.Exposed() {
		fmt.Fprintf(env.Stderr, "warning: %s: admin.listen %s is reachable from other hosts without admin.token: "+
			"/status and /metrics answer anyone, and backfills, replays and dead letters answer 403 there; set admin.token\n",
			cmp.Or(cfg.Position("admin.listen").String(), strings.Join(c.files, ", ")), cfg.Admin.Listen)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d source(s), %d transform(s), %d sink(s))\n",
		strings.Join(c.files, ", "), len(cfg.Sources), len(cfg.Transforms), len(cfg.Sinks))
	return nil
}
