package mysql

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// SchemaHistory keeps, per source and table, a record the source writes
// and reads back; the state store implements it.
//
// Lifecycle: set before Open (Source.SetSchemaHistory); the source calls
// it from its stream goroutine only. LoadSchema returns nil when nothing
// was saved; SaveSchema returns once the record is durable.
type SchemaHistory interface {
	LoadSchema(ctx context.Context, source, table string) ([]byte, error)
	SaveSchema(ctx context.Context, source, table string, v []byte) error
}

// SetSchemaHistory makes the source record which MariaDB columns were JSON
// from which binlog position on, and decode re-read events by that record.
func (s *Source) SetSchemaHistory(h SchemaHistory) { s.history = h }

// jsonRecord says: from binlog position File:Pos on, the table, whose
// table map had this shape, had these JSON columns.
type jsonRecord struct {
	File  string   `json:"file"`
	Pos   uint32   `json:"pos"`
	Shape string   `json:"shape"`
	JSON  []string `json:"json"`
}

// jsonHistory answers "which columns were JSON when this event was
// written" for MariaDB, whose binlog does not mark JSON columns (they are
// LONGTEXT with a json_valid CHECK, known only to information_schema).
//
// The rule: the first time Ferry reads a stretch of binlog (the frontier,
// past every recorded position), it asks information_schema, as close to
// the event's time as it gets, and records the answer with the event's
// position when it changed. Reading that stretch again (a replay, a
// checkpoint set into the past, a restart after a crash) uses the record
// in force at the event's position, so an old event decodes as it did
// live, whatever the table looks like today. Before the first record, or
// when the table map's shape differs from the recorded one, only today's
// information_schema is left, and it is used.
type jsonHistory struct {
	store   SchemaHistory
	source  string
	records map[string][]jsonRecord // db.table -> by position
}

func (h *jsonHistory) load(table string) ([]jsonRecord, error) {
	if recs, ok := h.records[table]; ok {
		return recs, nil
	}
	raw, err := h.store.LoadSchema(context.Background(), h.source, table)
	if err != nil {
		return nil, err
	}
	var recs []jsonRecord
	if raw != nil {
		if err := json.Unmarshal(raw, &recs); err != nil {
			return nil, fmt.Errorf("schema record of %s is unreadable: %w", table, err)
		}
	}
	h.records[table] = recs
	return recs, nil
}

func before(a, b position) bool {
	return a.File < b.File || (a.File == b.File && a.Pos < b.Pos)
}

// columns returns the JSON columns of db.table for the event at at;
// query reads today's information_schema.
func (h *jsonHistory) columns(db, table string, at position, tm *replication.TableMapEvent,
	query func(db, table string) (map[string]bool, error)) (map[string]bool, error) {
	name := db + "." + table
	recs, err := h.load(name)
	if err != nil {
		return nil, err
	}
	shape := tableShape(tm)
	frontier := len(recs) == 0 || before(position{File: recs[len(recs)-1].File, Pos: recs[len(recs)-1].Pos}, at)
	if !frontier {
		i, _ := slices.BinarySearchFunc(recs, at, func(r jsonRecord, at position) int {
			if before(position{File: r.File, Pos: r.Pos}, at) || (r.File == at.File && r.Pos == at.Pos) {
				return -1
			}
			return 1
		})
		if i > 0 && recs[i-1].Shape == shape {
			return asSet(recs[i-1].JSON), nil
		}
		return query(db, table)
	}
	cols, err := query(db, table)
	if err != nil {
		return nil, err
	}
	list := setList(cols)
	if len(recs) > 0 && recs[len(recs)-1].Shape == shape && slices.Equal(recs[len(recs)-1].JSON, list) {
		return cols, nil
	}
	recs = append(recs, jsonRecord{File: at.File, Pos: at.Pos, Shape: shape, JSON: list})
	raw, err := json.Marshal(recs)
	if err != nil {
		return nil, err
	}
	if err := h.store.SaveSchema(context.Background(), h.source, name, raw); err != nil {
		return nil, err
	}
	h.records[name] = recs
	return cols, nil
}

// tableShape fingerprints a table map: column names, types, metadata and
// character sets.
func tableShape(tm *replication.TableMapEvent) string {
	h := sha256.New()
	h.Write(tm.ColumnType)
	for _, m := range tm.ColumnMeta {
		_ = binary.Write(h, binary.BigEndian, m)
	}
	h.Write([]byte(strings.Join(tm.ColumnNameString(), "\x00")))
	for _, c := range tm.ColumnCharset {
		_ = binary.Write(h, binary.BigEndian, c)
	}
	_ = binary.Write(h, binary.BigEndian, tm.DefaultCharset)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func asSet(cols []string) map[string]bool {
	out := make(map[string]bool, len(cols))
	for _, c := range cols {
		out[c] = true
	}
	return out
}

func setList(cols map[string]bool) []string {
	out := make([]string, 0, len(cols))
	for c, ok := range cols {
		if ok {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}
