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
// `shopping.x`. Names match as MySQL compares them: column names always
// case-insensitively, database and table names case-insensitively when
// the server's lower_case_table_names is 1 or 2 (see filter.foldTables).
type pattern struct {
	text   string
	parts  []string
	folded []string // parts in lower case
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
	folded := make([]string, len(ps))
	for i, p := range ps {
		folded[i] = strings.ToLower(p)
	}
	return pattern{text: text, parts: ps, folded: folded}, nil
}

// columnPart is the index of the column name in a DB.TABLE.COLUMN pattern.
const columnPart = 2

func (p pattern) match(foldTables bool, names ...string) bool {
	for i, n := range names {
		part := p.parts[i]
		if i == columnPart || foldTables {
			part, n = p.folded[i], strings.ToLower(n)
		}
		if ok, _ := path.Match(part, n); !ok {
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
	// foldTables: database and table names compare case-insensitively, as
	// on a server with lower_case_table_names 1 or 2 (set by preflight;
	// false, MySQL's default on Linux, until then).
	foldTables bool
}

// setTableNameCase applies the server's lower_case_table_names.
func (f *filter) setTableNameCase(lowerCaseTableNames string) {
	f.foldTables = lowerCaseTableNames != "" && lowerCaseTableNames != "0"
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
	if len(f.include) > 0 && !f.anyMatch(f.include, db, table) {
		return false
	}
	return !f.anyMatch(f.exclude, db, table)
}

func (f *filter) column(db, table, column string) bool {
	return !f.anyMatch(f.excludeColumns, db, table, column)
}

func (f *filter) anyMatch(ps []pattern, names ...string) bool {
	for _, p := range ps {
		if p.match(f.foldTables, names...) {
			return true
		}
	}
	return false
}

// narrowedFilter is cfg's filter capturing only include (the tables of a
// backfill or a replay); cfg's excludes still apply.
func narrowedFilter(cfg *Config, include []string) (*filter, error) {
	c := *cfg
	c.Include = include
	return newFilter(&c)
}
