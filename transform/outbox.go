package transform

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ferry-cdc/ferry"
)

// Outbox configures an outbox rule: the rows inserted into a
// transactional-outbox table become the events, the way Debezium's
// EventRouter does it. Each field names a column.
type Outbox struct {
	Table         string            `yaml:"table"`          // DB.TABLE of the outbox table
	ID            string            `yaml:"id"`             // event id; default "id"
	AggregateID   string            `yaml:"aggregate_id"`   // subject and partition key; default "aggregate_id"
	AggregateType string            `yaml:"aggregate_type"` // optional: the `aggregatetype` extension
	Type          string            `yaml:"type"`           // event type; default "type"
	Payload       string            `yaml:"payload"`        // event data; default "payload"
	Headers       map[string]string `yaml:"headers"`        // CloudEvent extension name -> column
}

type outbox struct {
	db, table                           string
	id, aggregateID, aggregateType, typ string
	payload                             string
	headers                             []header // sorted by extension name
}

type header struct{ ext, column string }

func newOutbox(o *Outbox) (*outbox, error) {
	db, table, ok := strings.Cut(o.Table, ".")
	if !ok || db == "" || table == "" {
		return nil, fmt.Errorf("table must be DB.TABLE, got %q", o.Table)
	}
	ob := &outbox{db: db, table: table, id: or(o.ID, "id"), aggregateID: or(o.AggregateID, "aggregate_id"),
		aggregateType: o.AggregateType, typ: or(o.Type, "type"), payload: or(o.Payload, "payload")}
	for ext, col := range o.Headers {
		if !extensionName.MatchString(ext) || reserved[ext] {
			return nil, fmt.Errorf("header %q: extension names are lower-case letters and digits, at most 20", ext)
		}
		ob.headers = append(ob.headers, header{ext, col})
	}
	sort.Slice(ob.headers, func(i, j int) bool { return ob.headers[i].ext < ob.headers[j].ext })
	return ob, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// owns reports whether c is a change of the outbox table. Names compare
// case-insensitively: the rule cannot know the server's
// lower_case_table_names, and `Shop.Outbox` written for a server that folds
// names must not silently match nothing.
func (o *outbox) owns(c *ferry.Change) bool {
	return strings.EqualFold(c.DB, o.db) && strings.EqualFold(c.Table, o.table)
}

// column returns the value of the named column of row, matched as MySQL
// matches column names: case-insensitively.
func column(row ferry.Row, name string) (any, bool) {
	if v, ok := row.Get(name); ok {
		return v, true
	}
	for i, c := range row.Columns {
		if strings.EqualFold(c, name) {
			return row.Values[i], true
		}
	}
	return nil, false
}

// emits reports whether a change of the outbox table is an event: inserts
// (and snapshot rows) are; deleting processed outbox rows, the usual
// clean-up, is not, and neither is rewriting one.
func (o *outbox) emits(c *ferry.Change) bool {
	return c.Op == ferry.OpCreate || c.Op == ferry.OpSnapshot
}

// base builds the event an outbox row describes.
func (o *outbox) base(c *ferry.Change, b *eventBase) error {
	col := func(name string) (any, error) {
		v, ok := column(c.After, name)
		if !ok {
			return nil, fmt.Errorf("outbox table %s.%s has no column %q", o.db, o.table, name)
		}
		return v, nil
	}
	for _, f := range []struct {
		column string
		dst    *string
	}{{o.id, &b.id}, {o.typ, &b.typ}, {o.aggregateID, &b.subject}} {
		v, err := col(f.column)
		if err != nil {
			return err
		}
		if *f.dst = ferry.ValueText(v); *f.dst == "" {
			return fmt.Errorf("outbox column %q is empty", f.column)
		}
	}
	b.partitionKey = b.subject
	payload, err := col(o.payload)
	if err != nil {
		return err
	}
	b.data = payloadJSON(payload)
	if o.aggregateType != "" {
		v, err := col(o.aggregateType)
		if err != nil {
			return err
		}
		b.setExtension("aggregatetype", ferry.ValueText(v))
	}
	for _, h := range o.headers {
		v, err := col(h.column)
		if err != nil {
			return err
		}
		if v != nil {
			b.setExtension(h.ext, ferry.ValueText(v))
		}
	}
	return nil
}

// payloadJSON embeds a payload column: JSON columns and text holding JSON
// as JSON, anything else as a JSON string.
func payloadJSON(v any) []byte {
	switch p := v.(type) {
	case json.RawMessage:
		return append([]byte(nil), p...)
	case string:
		if json.Valid([]byte(p)) {
			return []byte(p)
		}
	case []byte:
		if json.Valid(p) {
			return append([]byte(nil), p...)
		}
	}
	return appendValue(nil, v)
}
