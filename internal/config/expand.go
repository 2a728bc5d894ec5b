package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandTree expands ${...} in every scalar value under n (keys are left
// alone). It runs on parsed nodes, so line numbers stay right and a value
// can never inject YAML structure.
func (l *loader) expandTree(n *yaml.Node, dir string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			l.expandTree(c, dir)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			l.expandTree(n.Content[i], dir)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		out, err := expand(n.Value, dir, l.lookupEnv)
		if err != nil {
			l.d.errorf(n, "", "%v", err)
			return
		}
		if out != n.Value {
			l.d.expanded[n] = n.Value
			n.Value = out
			n.Tag = "!!str"
		}
	}
}

// expand replaces ${VAR}, ${VAR:-default} and ${file:PATH}; $${ is a
// literal ${. A relative PATH is relative to dir, the config file's
// directory.
func expand(s, dir string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			v, err := expandOne(s[i+2:i+end], dir, lookup)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func expandOne(ref, dir string, lookup func(string) (string, bool)) (string, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		if path == "" {
			return "", fmt.Errorf("${file:} needs a path")
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read ${file:%s}: %w", strings.TrimPrefix(ref, "file:"), unwrapPathError(err))
		}
		return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
	}
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !envName.MatchString(name) {
		return "", fmt.Errorf("invalid variable name %q in ${%s}", name, ref)
	}
	if v, ok := lookup(name); ok && (v != "" || !hasDefault) {
		return v, nil
	}
	if hasDefault {
		return def, nil
	}
	return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} for an optional value)", name, name)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
