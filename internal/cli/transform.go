package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/transform"
)

// result is one line of `ferry transform test` output.
type result struct {
	Input   int             `json:"input"`
	Rule    string          `json:"rule,omitempty"`
	To      []string        `json:"to,omitempty"`
	Event   json.RawMessage `json:"event,omitempty"`
	Error   string          `json:"error,omitempty"`
	Dropped bool            `json:"dropped,omitempty"`
}

// errMismatch is the outcome of --expect when results differ.
var errMismatch = errors.New("results differ from the expected file")

// transformCmd is `ferry transform test`: the CloudEvents sample changes
// yield, printed as JSON, or compared with a golden file for CI.
func transformCmd(args []string, env Env) error {
	if len(args) == 0 || args[0] != "test" {
		return usagef("transform needs the subcommand test")
	}
	c := newCommand("transform test", env)
	only := c.fs.String("rule", "", "evaluate only this rule (no default mapping)")
	input := c.fs.String("input", "", "sample changes (JSON object, array or lines)")
	expect := c.fs.String("expect", "", "expected results; exit 1 on a difference")
	update := c.fs.Bool("update", false, "write the results to the --expect file")
	if _, err := c.parse(args[1:], 0); err != nil {
		return err
	}
	if *input == "" {
		return usagef("transform test needs --input FILE")
	}
	if *update && *expect == "" {
		return usagef("--update needs --expect FILE")
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	engine, err := app.BuildEngine(cfg)
	if *only != "" && err == nil {
		if engine, err = app.BuildRuleEngine(cfg, *only); err != nil {
			return usagef("%v", err)
		}
	}
	if err != nil {
		return err
	}
	results, err := runSamples(cfg, engine, *input)
	if err != nil {
		return err
	}
	got, _ := json.MarshalIndent(results, "", "  ")
	got = append(got, '\n')
	switch {
	case *update:
		return os.WriteFile(*expect, got, 0o644)
	case *expect != "":
		return compareResults(env, got, *expect, len(results))
	}
	_, err = env.Stdout.Write(got)
	return err
}

func runSamples(cfg *config.Config, engine *transform.Engine, input string) ([]result, error) {
	f, err := os.Open(input)
	if err != nil {
		return nil, usagef("read --input: %v", err)
	}
	defer f.Close()
	defaultSource := ""
	if names := cfg.SourceNames(); len(names) == 1 {
		defaultSource = names[0]
	}
	samples, err := transform.ParseSamples(bufio.NewReader(f), defaultSource)
	if err != nil {
		return nil, usagef("%s: %v", input, err)
	}
	w := engine.NewWorker()
	results := []result{}
	for i := range samples {
		outs := w.Apply(&samples[i], nil)
		if len(outs) == 0 {
			results = append(results, result{Input: i, Dropped: true})
		}
		for _, o := range outs {
			r := result{Input: i, Rule: o.Rule, To: o.To}
			if r.Rule == "" {
				r.Rule = "(default)"
			}
			if o.Err != nil {
				r.Error = o.Err.Error()
			} else if r.Event, err = json.Marshal(o.Event); err != nil {
				return nil, fmt.Errorf("encode event of sample %d: %w", i, err)
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// compareResults compares JSON values, so formatting does not matter, and
// shows the first differing line of the indented forms.
func compareResults(env Env, got []byte, path string, n int) error {
	want, err := os.ReadFile(path)
	if err != nil {
		return usagef("read --expect: %v", err)
	}
	var gv, wv any
	if err := json.Unmarshal(want, &wv); err != nil {
		return usagef("%s is not JSON: %v", path, err)
	}
	_ = json.Unmarshal(got, &gv)
	if reflect.DeepEqual(gv, wv) {
		fmt.Fprintf(env.Stdout, "ok: %d result(s) match %s\n", n, path)
		return nil
	}
	// Both sides re-encoded the same way (sorted keys), so lines align.
	gc, _ := json.MarshalIndent(gv, "", "  ")
	wc, _ := json.MarshalIndent(wv, "", "  ")
	gl, wl := strings.Split(string(gc), "\n"), strings.Split(string(wc), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		g, w := line(gl, i), line(wl, i)
		if g != w {
			fmt.Fprintf(env.Stderr, "first difference at line %d of the results:\n- expected: %s\n+ got:      %s\n", i+1, strings.TrimSpace(w), strings.TrimSpace(g))
			break
		}
	}
	fmt.Fprintf(env.Stderr, "(run with --update to accept the new results)\n")
	return fmt.Errorf("%w %s", errMismatch, path)
}

func line(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "(end)"
}
