package mysql

import (
	"fmt"
	"path"
	"strings"
)

// systemSchemas are never captured: their changes are the server's own.
var systemSchemas = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// pattern matches dotted names part by part with path.Match syntax (* ? [..])
// inside each part, so `shop.*` matches every table of shop but not
// `shopping.x`.
type pattern struct {
	text  string
	parts []string
}

func compilePattern(text string, parts int) (pattern, error) {
	ps := strings.Split(text, ".")
	if len(ps) != parts {
		want := "DB.TABLE"
		if parts == 3 {
			want = "DB.TABLE.COLUMN"
		}
		return pattern{}, fmt.Errorf("pattern %q must have the form %s", text, want)
	}
	for _, p := range ps {
		if p == "" {
			return pattern{}, fmt.Errorf("pattern %q has an empty part", text)
		}
		if _, err := path.Match(p, ""); err != nil {
			return pattern{}, fmt.Errorf("pattern %q: %w", text, err)
		}
	}
	return pattern{text: text, parts: ps}, nil
}

func (p pattern) match(names ...string) bool {
	for i, n := range names {
		if ok, _ := path.Match(p.parts[i], n); !ok {
			return false
		}
	}
	return true
}

// literal reports whether the pattern has no wildcard, i.e. names one object.
func (p pattern) literal() bool { return !strings.ContainsAny(p.text, "*?[") }

// filter decides which tables and columns are captured.
type filter struct {
	include, exclude, excludeColumns []pattern
}

func newFilter(c *Config) (*filter, error) {
	f := &filter{}
	for _, set := range []struct {
		in    []string
		parts int
		out   *[]pattern
	}{{c.Include, 2, &f.include}, {c.Exclude, 2, &f.exclude}, {c.ExcludeColumns, 3, &f.excludeColumns}} {
		for _, text := range set.in {
			p, err := compilePattern(text, set.parts)
			if err != nil {
				return nil, err
			}
			*set.out = append(*set.out, p)
		}
	}
	return f, nil
}

func (f *filter) table(db, table string) bool {
	if systemSchemas[strings.ToLower(db)] {
		return false
	}
	if len(f.include) > 0 && !anyMatch(f.include, db, table) {
		return false
	}
	return !anyMatch(f.exclude, db, table)
}

func (f *filter) column(db, table, column string) bool {
	return !anyMatch(f.excludeColumns, db, table, column)
}

func anyMatch(ps []pattern, names ...string) bool {
	for _, p := range ps {
		if p.match(names...) {
			return true
		}
	}
	return false
}
