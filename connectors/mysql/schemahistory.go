package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// SchemaHistory stores a source's schema history as keyed records; the
// state store implements it.
//
// Lifecycle: set before Open (Source.SetSchemaHistory); the source calls
// it from one goroutine at a time. SchemaRecords returns an empty map when
// nothing was saved; SaveSchema returns once the record is durable, which
// is before any checkpoint past the DDL it records is handed on.
type SchemaHistory interface {
	SchemaRecords(ctx context.Context, source string) (map[string][]byte, error)
	SaveSchema(ctx context.Context, source, key string, v []byte) error
}

// SetSchemaHistory makes the source keep its schema history durably, so
// restarts, `checkpoint set` into the past and replays decode old events
// with the schemas of their time.
func (s *Source) SetSchemaHistory(h SchemaHistory) { s.history = h }

// tableSchema is one version of a table's schema: what decoding a row
// needs beyond the binlog's column types.
type tableSchema struct {
	Columns []schemaColumn `json:"columns"`
	Key     []string       `json:"key,omitempty"`     // primary key, in key order
	Charset string         `json:"charset,omitempty"` // the table's default character set
}

// schemaColumn is one column of a tableSchema.
type schemaColumn struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"` // as declared, for display
	Unsigned bool     `json:"unsigned,omitempty"`
	Charset  string   `json:"charset,omitempty"` // "binary" for bytes; empty for non-text types
	Labels   []string `json:"labels,omitempty"`  // ENUM and SET
	JSON     bool     `json:"json,omitempty"`    // MariaDB JSON (LONGTEXT with json_valid)
}

func (t *tableSchema) clone() *tableSchema {
	if t == nil {
		return nil
	}
	c := &tableSchema{Columns: slices.Clone(t.Columns), Key: slices.Clone(t.Key), Charset: t.Charset}
	return c
}

func (t *tableSchema) column(name string) int {
	return slices.IndexFunc(t.Columns, func(c schemaColumn) bool { return strings.EqualFold(c.Name, name) })
}

// Where a schema version came from.
const (
	originSnapshot = "snapshot"           // information_schema in a consistent snapshot at At
	originDDL      = "ddl"                // a DDL statement read from the binlog at At
	originCatalog  = "information_schema" // read when the history had nothing better
	originResync   = "resync"             // `ferry schema resync`
)

// schemaVersion is a table's schema from binlog position At on.
type schemaVersion struct {
	Table  string       `json:"table"` // db.table
	At     position     `json:"at"`    // File and Pos only
	Origin string       `json:"origin"`
	DDL    string       `json:"ddl,omitempty"`
	Schema *tableSchema `json:"schema,omitempty"` // nil: the table does not exist from At on
	// Unknown: a DDL made the table from one the history does not know
	// (RENAME or CREATE ... LIKE of an uncaptured table); information_schema
	// is read at its first row event.
	Unknown bool `json:"unknown,omitempty"`
	// Quarantined is why the DDL at At could not be applied; the table's
	// row events are dead-lettered until `ferry schema resync`.
	Quarantined string `json:"quarantined,omitempty"`
	// Lifted is the quarantine a resync lifted by recording today's
	// schema in place of the quarantined version (nothing changed the table
	// between the DDL and the resync), so the rows dead-lettered meanwhile
	// decode when that range is replayed.
	Lifted string `json:"lifted,omitempty"`
}

// historyBase is the history's own record: where the snapshot it started
// from was taken, and the default character sets of databases.
type historyBase struct {
	At         position          `json:"at"`
	DBCharsets map[string]string `json:"db_charsets,omitempty"`
	Server     string            `json:"server_charset,omitempty"`
}

const baseKey = "base"

func versionKey(table string, at position) string {
	return fmt.Sprintf("v\x00%s\x00%s\x00%010d", table, at.File, at.Pos)
}

// Sentinel errors of the schema history.
var (
	errQuarantined = errors.New("the table is quarantined")
	errNoSchema    = errors.New("no schema in the history")
)

// schemaHistory is the versioned schema of the captured tables: taken from
// information_schema at a known position (the base), then moved by every
// DDL the stream reads. A DDL is recorded once, under its position, so
// reading a stretch of binlog again (restart, replay, checkpoint set into
// the past) finds what it recorded the first time and changes nothing.
type schemaHistory struct {
	store  SchemaHistory // nil: kept in memory only
	source string
	base   *historyBase
	tables map[string][]schemaVersion // db.table -> sorted by At
	// fold: table names compare case-insensitively (lower_case_table_names
	// 1 or 2), so a DDL's `Orders` is the table map's `orders`.
	fold bool
}

// key is the history's name of db.table.
func (h *schemaHistory) key(db, table string) string {
	if h.fold {
		return strings.ToLower(db + "." + table)
	}
	return db + "." + table
}

// loadSchemaHistory reads the history of source from store (nil: empty,
// in memory).
func loadSchemaHistory(ctx context.Context, store SchemaHistory, source string) (*schemaHistory, error) {
	h := &schemaHistory{store: store, source: source, tables: map[string][]schemaVersion{}}
	if store == nil {
		return h, nil
	}
	recs, err := store.SchemaRecords(ctx, source)
	if err != nil {
		return nil, err
	}
	for k, raw := range recs {
		switch {
		case k == baseKey:
			h.base = &historyBase{}
			if err := json.Unmarshal(raw, h.base); err != nil {
				return nil, fmt.Errorf("schema history of source %s: base record is unreadable: %w", source, err)
			}
		case strings.HasPrefix(k, "v\x00"):
			var v schemaVersion
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, fmt.Errorf("schema history of source %s: record %q is unreadable: %w", source, k, err)
			}
			h.tables[v.Table] = append(h.tables[v.Table], v)
		}
	}
	for _, vs := range h.tables {
		slices.SortFunc(vs, func(a, b schemaVersion) int { return comparePositions(a.At, b.At) })
	}
	return h, nil
}

func (h *schemaHistory) save(ctx context.Context, key string, v any) error {
	if h.store == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return h.store.SaveSchema(ctx, h.source, key, raw)
}

func (h *schemaHistory) saveBase(ctx context.Context) error { return h.save(ctx, baseKey, h.base) }

// put records v unless its table already has a version at v.At (a DDL read
// again), or replaces that version when replace is set.
func (h *schemaHistory) put(ctx context.Context, v schemaVersion, replace bool) error {
	v.At = position{File: v.At.File, Pos: v.At.Pos}
	vs := h.tables[v.Table]
	i, found := slices.BinarySearchFunc(vs, v.At, func(e schemaVersion, at position) int { return comparePositions(e.At, at) })
	if found && !replace {
		return nil
	}
	if err := h.save(ctx, versionKey(v.Table, v.At), v); err != nil {
		return err
	}
	if found {
		vs[i] = v
	} else {
		h.tables[v.Table] = slices.Insert(vs, i, v)
	}
	return nil
}

// has reports whether table has a version recorded exactly at at.
func (h *schemaHistory) has(table string, at position) bool {
	_, found := slices.BinarySearchFunc(h.tables[table], at, func(e schemaVersion, at position) int { return comparePositions(e.At, at) })
	return found
}

// before returns the version of table in force just before at (nil: none).
func (h *schemaHistory) before(table string, at position) *schemaVersion {
	vs := h.tables[table]
	i, _ := slices.BinarySearchFunc(vs, at, func(e schemaVersion, at position) int { return comparePositions(e.At, at) })
	if i == 0 {
		return nil
	}
	return &vs[i-1]
}

// inForce returns the version of table in force at at: the last one
// recorded at or before it (nil: none).
func (h *schemaHistory) inForce(table string, at position) *schemaVersion {
	vs := h.tables[table]
	i := len(vs)
	for i > 0 && comparePositions(vs[i-1].At, at) > 0 {
		i--
	}
	if i == 0 {
		return nil
	}
	return &vs[i-1]
}

// catalogReader reads one table's schema from today's information_schema;
// nil, nil when the table does not exist.
type catalogReader func(db, table string) (*tableSchema, error)

// schemaFit reports how a schema version does not fit a row event's
// table map ("" when it fits).
type schemaFit func(*tableSchema) string

// schemaAt returns the schema of db.table for a row event at at. Where the
// history has no version at or before at, the first later one is used if
// it fits the table map (an event read before the base snapshot, with no
// DDL between); a table the history never saw is read from
// information_schema and recorded at at. A version in force that does not
// fit means a DDL was missed or misread: the table is quarantined.
func (h *schemaHistory) schemaAt(ctx context.Context, db, table string, at position, fit schemaFit, read catalogReader) (*tableSchema, error) {
	name := h.key(db, table)
	v := h.inForce(name, at)
	switch {
	case v == nil && len(h.tables[name]) > 0:
		first := h.tables[name][0]
		if first.Schema != nil && fit(first.Schema) == "" {
			return first.Schema, nil
		}
		return nil, errFatal(fmt.Errorf("%w for %s at %s: the history knows it from %s on (%s) and that schema does not fit the row event; "+
			"start at or after %s (`ferry checkpoint set`), or exclude the table", errNoSchema, name, at, first.At, first.Origin, first.At))
	case v != nil && v.Quarantined != "":
		return nil, fmt.Errorf("%w since the DDL at %s could not be applied (%s): %s", errQuarantined, v.At, v.Quarantined, truncate(v.DDL, 200))
	case v != nil && v.Schema != nil && !v.Unknown:
		if problem := fit(v.Schema); problem != "" {
			return nil, fmt.Errorf("%w: its schema history (%s at %s) does not fit the row event at %s (%s): a DDL was missed or misread; "+
				"run `ferry schema resync --source %s --table %s`", errQuarantined, v.Origin, v.At, at, problem, h.source, name)
		}
		return v.Schema, nil
	}
	// Nothing usable: a table never seen, one made from an unknown table,
	// or rows of a table the history holds as dropped.
	s, err := read(db, table)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errFatal(fmt.Errorf("%w for %s at %s and information_schema does not show the table: it was dropped since "+
			"(start after its rows with `ferry checkpoint set`, or exclude it), or the user may not see it (GRANT SELECT on it)", errNoSchema, name, at))
	}
	nv := schemaVersion{Table: name, At: at, Origin: originCatalog, Schema: s}
	replace := false
	if v != nil && v.Unknown {
		nv.At, nv.DDL, replace = v.At, v.DDL, true
	}
	if err := h.put(ctx, nv, replace); err != nil {
		return nil, err
	}
	if problem := fit(s); problem != "" {
		return nil, errFatal(fmt.Errorf("%s today does not fit the row event at %s (%s) and the history has no version of its time: "+
			"start after that event (`ferry checkpoint set`), or exclude the table", name, at, problem))
	}
	return s, nil
}

// dbCharset is the default character set of a database, for columns whose
// DDL names none.
func (h *schemaHistory) dbCharset(db string) string {
	if h.base != nil {
		if cs := h.base.DBCharsets[db]; cs != "" {
			return cs
		}
		return h.base.Server
	}
	return ""
}
