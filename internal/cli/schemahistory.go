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

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/state"
)

// schemaCmd is `ferry schema show|resync`: a mysql source's schema
// history, read from the store when no ferry runs, else through the admin
// API of the ferry that holds it.
func schemaCmd(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "show" && args[0] != "resync") {
		return usagef("schema needs show or resync")
	}
	verb := args[0]
	c := newCommand("schema "+verb, env)
	source := c.fs.String("source", "", "source name")
	table := c.fs.String("table", "", "DB.TABLE (resync: required; show: only this table)")
	at := c.fs.String("at", "", "show: only the versions in force at this FILE:POS")
	asJSON := c.fs.Bool("json", false, "show: one JSON version per line")
	if _, err := c.parse(args[1:], 0); err != nil {
		return err
	}
	switch {
	case *source == "":
		return usagef("schema %s needs --source NAME", verb)
	case verb == "resync" && *table == "":
		return usagef("schema resync needs --table DB.TABLE")
	case verb == "resync" && *at != "":
		return usagef("schema resync takes no --at: it reads the table at the current position")
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	if cfg.State.Checkpoints.Type == "mysql" {
		return sharedSchema(ctx, env, cfg, configArgs(c.files), verb, *source, *table, *at, *asJSON)
	}
	store, err := state.Open(cfg.State.Dir, state.Options{ReadOnly: verb == "show"})
	switch {
	case verb == "show" && errors.Is(err, state.ErrNoStore):
		return printSchemaHistory(env.Stdout, nil, *asJSON)
	case errors.Is(err, state.ErrLocked):
		return liveSchema(ctx, env, cfg, configArgs(c.files), verb, *source, *table, *at, *asJSON)
	case err != nil:
		return err
	}
	defer store.Close()
	if verb == "show" {
		views, err := app.ShowSchemaHistory(ctx, cfg, store, *source, *table, *at)
		if err != nil {
			return usagef("%v", err)
		}
		return printSchemaHistory(env.Stdout, views, *asJSON)
	}
	res, err := app.ResyncSchema(ctx, cfg, store, *source, *table)
	if err != nil {
		return err
	}
	printResync(env.Stdout, configArgs(c.files), *source, *table, res)
	return nil
}

// sharedSchema runs the schema commands on the history in the shared
// checkpoint table (state.checkpoints type mysql). A resync while a ferry
// runs on this state.dir goes through its admin API (a leader records it
// at its read position); otherwise it takes the ha lock first, so it never
// writes beside a streaming leader.
func sharedSchema(ctx context.Context, env Env, cfg *config.Config, cfgArgs, verb, source, table, at string, asJSON bool) error {
	if verb == "resync" {
		if store, err := state.Open(cfg.State.Dir, state.Options{ReadOnly: true}); errors.Is(err, state.ErrLocked) {
			return liveSchema(ctx, env, cfg, cfgArgs, verb, source, table, at, asJSON)
		} else if err == nil {
			_ = store.Close()
		}
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, closeStore, _, err := app.OpenSchemaHistory(ctx, cfg, verb == "resync", 3*time.Second, log)
	if errors.Is(err, app.ErrLeaseBusy) {
		return fmt.Errorf("%w: run the resync on the leading replica (its admin API does it at its read position), or stop every replica", err)
	}
	if err != nil {
		return err
	}
	defer closeStore()
	if verb == "show" {
		views, err := app.ShowSchemaHistory(ctx, cfg, h, source, table, at)
		if err != nil {
			return usagef("%v", err)
		}
		return printSchemaHistory(env.Stdout, views, asJSON)
	}
	res, err := app.ResyncSchema(ctx, cfg, h, source, table)
	if err != nil {
		return err
	}
	printResync(env.Stdout, cfgArgs, source, table, res)
	return nil
}

// printResync says where the re-read schema is in force from and, when the
// resync lifted a quarantine, the replay that delivers the rows
// dead-lettered meanwhile.
func printResync(w io.Writer, cfgArgs, source, table string, res mysql.Resync) {
	fmt.Fprintf(w, "%s: schema of %s re-read from information_schema, in force from %s\n", source, table, res.At)
	if res.ReplayFrom == "" {
		return
	}
	fmt.Fprintf(w, "the quarantine of %s is lifted: its rows dead-lettered since %s decode now; deliver them (with their original ids) with\n"+
		"  ferry replay%s --source %s --table %s --from %s --until %s\n"+
		"which also removes their dead letters (rule schema-quarantine) once delivered\n", table, res.ReplayFrom, cfgArgs, source, table, res.ReplayFrom, res.ReplayUntil)
}

// configArgs repeats the -c flags of a command, for a command it prints.
func configArgs(files []string) string {
	var b strings.Builder
	for _, f := range files {
		b.WriteString(" -c " + f)
	}
	return b.String()
}

// liveSchema asks the running ferry that holds the store.
func liveSchema(ctx context.Context, env Env, cfg *config.Config, cfgArgs, verb, source, table, at string, asJSON bool) error {
	if cfg.Admin.Listen == "" {
		return fmt.Errorf("a running ferry holds %s but its admin listener is off: set admin.listen to reach its schema history, or stop it", cfg.State.Dir)
	}
	cl, err := adminClient(cfg, "")
	if err != nil {
		return err
	}
	if verb == "show" {
		views, err := cl.SchemaHistory(ctx, source, table, at)
		if err != nil {
			return inputError(err)
		}
		return printSchemaHistory(env.Stdout, views, asJSON)
	}
	res, err := cl.ResyncSchema(ctx, source, table)
	if err != nil {
		return inputError(err)
	}
	printResync(env.Stdout, cfgArgs, source, table, res)
	return nil
}

func printSchemaHistory(w io.Writer, views []mysql.SchemaVersionView, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, v := range views {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "no schema history")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tFROM\tORIGIN\tSTATE\tCOLUMNS\tKEY")
	for _, v := range views {
		cols := strings.Join(v.Columns, ", ")
		if v.State == "quarantined" {
			cols = v.Reason + ": " + v.DDL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Table, v.At, v.Origin, v.State, cols, strings.Join(v.Key, ","))
	}
	return tw.Flush()
}
