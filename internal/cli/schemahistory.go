package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
	store, err := state.Open(cfg.State.Dir, state.Options{ReadOnly: verb == "show"})
	switch {
	case verb == "show" && errors.Is(err, state.ErrNoStore):
		return printSchemaHistory(env.Stdout, nil, *asJSON)
	case errors.Is(err, state.ErrLocked):
		return liveSchema(ctx, env, cfg, verb, *source, *table, *at, *asJSON)
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
	pos, err := app.ResyncSchema(ctx, cfg, store, *source, *table)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: schema of %s re-read from information_schema, in force from %s\n", *source, *table, pos)
	return nil
}

// liveSchema asks the running ferry that holds the store.
func liveSchema(ctx context.Context, env Env, cfg *config.Config, verb, source, table, at string, asJSON bool) error {
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
	pos, err := cl.ResyncSchema(ctx, source, table)
	if err != nil {
		return inputError(err)
	}
	fmt.Fprintf(env.Stdout, "%s: schema of %s re-read from information_schema, in force from %s\n", source, table, pos)
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
