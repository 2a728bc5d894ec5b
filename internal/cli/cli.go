// Package cli is the ferry command line. main only calls Main; everything
// here returns errors, and Main maps them to exit codes: 0 success,
// 1 runtime failure, 2 usage or configuration error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// badInput is a well-formed command whose request was refused (exit code 2
// like a usage error, but the usage text would only bury the reason).
type badInput struct{ err error }

func (e *badInput) Error() string { return e.err.Error() }
func (e *badInput) Unwrap() error { return e.err }

// Env is what a command may touch; tests substitute it.
type Env struct {
	Stdout, Stderr io.Writer
	Version        string
}

const usage = `ferry: change data capture from MySQL/MariaDB binlogs to CloudEvents

Usage:
  ferry run        -c ferry.yaml [-c more.yaml] [--log-level L] [--log-format F] [--capture samples.jsonl]
  ferry validate   -c ferry.yaml [-c more.yaml]
  ferry checkpoint show|set|reset -c ferry.yaml --source NAME [POSITION]
  ferry transform test -c ferry.yaml --input samples.json [--rule NAME] [--expect expected.json [--update]]
  ferry backfill   -c ferry.yaml --source NAME --table DB.TABLE [--where SQL] [--key a,b] [--chunk N] [--rate ROWS_PER_S]
                   [--to SINK ...] [--restart] [--dry-run] [--detach] [--server-id N]
  ferry replay     -c ferry.yaml --source NAME --from POSITION [--until POSITION|TIME] [--table DB.TABLE ...]
                   [--to SINK ...] [--dry-run] [--server-id N]
  ferry dlq list|replay -c ferry.yaml [--sink NAME] [--json]
  ferry schema show   -c ferry.yaml --source NAME [--table DB.TABLE] [--at FILE:POS] [--json]
  ferry schema resync -c ferry.yaml --source NAME --table DB.TABLE
  ferry health     [-c ferry.yaml ... | --addr HOST:PORT] [--ready] [--timeout 3s]
  ferry config schema                (JSON Schema of the configuration, for editors)
  ferry version

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
`

// Main runs the command in args (without the program name) and returns the
// process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	err := dispatch(ctx, args, env)
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	var bi *badInput
	var ce config.Errors
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(env.Stderr, "ferry: %v\n\n%s", err, usage)
		return ExitUsage
	case errors.As(err, &bi):
		fmt.Fprintf(env.Stderr, "ferry: %v\n", err)
		return ExitUsage
	case errors.As(err, &ce):
		fmt.Fprintln(env.Stderr, strings.TrimRight(ce.Error(), "\n"))
		fmt.Fprintf(env.Stderr, "ferry: %d configuration error(s)\n", len(ce))
		return ExitUsage
	default:
		fmt.Fprintf(env.Stderr, "ferry: %v\n", err)
		return ExitFailure
	}
}

func dispatch(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return usagef("missing command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, rest, env)
	case "validate":
		return validateCmd(rest, env)
	case "checkpoint":
		return checkpointCmd(ctx, rest, env)
	case "transform":
		return transformCmd(rest, env)
	case "dlq":
		return dlqCmd(ctx, rest, env)
	case "backfill":
		return backfillCmd(ctx, rest, env)
	case "replay":
		return replayCmd(ctx, rest, env)
	case "config":
		return configCmd(rest, env)
	case "health":
		return healthCmd(ctx, rest, env)
	case "schema":
		return schemaCmd(ctx, rest, env)
	case "version", "--version", "-v":
		fmt.Fprintln(env.Stdout, "ferry", env.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// newFlags returns a flag set whose errors are usage errors.
func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("ferry "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags anywhere among positional arguments (flag stops at
// the first positional one; users write `checkpoint set POS -c x` too).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// command is a subcommand's flag set with the -c files every command takes.
type command struct {
	fs    *flag.FlagSet
	files stringList
}

func newCommand(name string, env Env) *command {
	c := &command{fs: newFlags(name, env)}
	c.fs.Var(&c.files, "c", "configuration file (repeatable)")
	return c
}

// parse parses args; at most maxArgs positional arguments are allowed.
func (c *command) parse(args []string, maxArgs int) ([]string, error) {
	rest, err := parse(c.fs, args)
	if err != nil {
		return nil, err
	}
	if len(rest) > maxArgs {
		return nil, usagef("%s: unexpected arguments %q", c.fs.Name(), rest[maxArgs:])
	}
	return rest, nil
}

// load reads and validates the -c files.
func (c *command) load() (*config.Config, error) {
	if err := requireConfig(c.files); err != nil {
		return nil, err
	}
	return app.Load(c.files)
}

func requireConfig(files stringList) error {
	if len(files) == 0 {
		return usagef("missing -c CONFIG (a YAML file; repeat -c to merge several)")
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return config.Errors{{Pos: config.Pos{File: f}, Msg: "cannot read configuration: " + errors.Unwrap(err).Error()}}
		}
	}
	return nil
}
