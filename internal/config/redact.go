package config

import (
	"cmp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// minRedacted is the shortest expanded value that is redacted from text:
// shorter ones ("1", "true", "9090") are no secrets, and replacing them
// everywhere would garble every message.
const minRedacted = 6

// Redactor replaces the values ${...} expanded to with the references
// themselves, so that a secret read from a file or the environment never
// reaches an error, a log line, /status or a dead letter, whichever field
// it was written into. The zero Redactor changes nothing.
type Redactor struct {
	r *strings.Replacer
}

// newRedactor redacts the expanded scalars of expanded (node -> original
// text); longer values first, so that one containing another goes whole.
func newRedactor(expanded map[*yaml.Node]string) Redactor {
	type pair struct{ value, ref string }
	var pairs []pair
	seen := map[string]bool{}
	for n, orig := range expanded {
		if len(n.Value) < minRedacted || seen[n.Value] {
			continue
		}
		seen[n.Value] = true
		pairs = append(pairs, pair{n.Value, orig})
		// A multi-line secret (a key file) may be quoted line by line.
		for _, line := range strings.Split(n.Value, "\n") {
			if line = strings.TrimSpace(line); len(line) >= minRedacted && !seen[line] {
				seen[line] = true
				pairs = append(pairs, pair{line, orig})
			}
		}
	}
	if len(pairs) == 0 {
		return Redactor{}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Compare(len(b.value), len(a.value)) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p.value, p.ref)
	}
	return Redactor{r: strings.NewReplacer(args...)}
}

// Redact returns s with every expanded value replaced by its reference.
func (r Redactor) Redact(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Redactor returns the redactor of the configuration's expanded values.
func (c *Config) Redactor() Redactor { return c.redactor }
