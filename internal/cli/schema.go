package cli

import (
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
)

// configCmd is `ferry config schema`: it prints the JSON Schema of the
// configuration file, with this binary's connectors, for editors
// (configs/ferry.schema.json is its output).
func configCmd(args []string, env Env) error {
	fs := newFlags("config", env)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] != "schema" {
		return usagef("config: want `ferry config schema`")
	}
	b, err := config.Schema(app.Registry{})
	if err != nil {
		return err
	}
	_, err = env.Stdout.Write(b)
	return err
}
