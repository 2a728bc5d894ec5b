package transform

import (
	"net/url"
	"strconv"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/ferry-cdc/ferry"
)

// PartitionKeyExtension is the CloudEvents extension (the Partitioning
// extension's attribute) that carries an event's ordering key; sinks use it as
// the Kafka key and to keep per-key order.
const PartitionKeyExtension = ferry.PartitionKeyExtension

const contentTypeJSON = "application/json"

// DefaultMapping turns a row change into the default CloudEvent of the
// product contract. It is safe for concurrent use.
type DefaultMapping struct {
	typePrefix string
	names      sync.Map // tableKey -> *tableNames
}

// tableNames caches the strings every event of one table shares, so the hot
// path neither parses URIs nor concatenates them per row.
type tableNames struct {
	source     types.URIRef
	typeStem   string     // "<prefix>.<db>.<table>."
	keyStem    string     // "<db>.<table>"
	keyStemSep string     // "<db>.<table>/"
	vals       [2]ref.Val // db and table as CEL values, for rules
	// types holds typeStem+op.TypeSuffix() per operation, built once per
	// table instead of once per change.
	types [8]string
	data  *tableData
}

// typ is the default CloudEvent type of op on this table.
func (n *tableNames) typ(op ferry.Op) string {
	if int(op) < len(n.types) {
		return n.types[op]
	}
	return n.typeStem + op.TypeSuffix()
}

type tableKey struct{ source, db, table string }

// NewDefaultMapping returns the mapping with the given CloudEvent type prefix.
func NewDefaultMapping(typePrefix string) *DefaultMapping {
	return &DefaultMapping{typePrefix: typePrefix}
}

func (m *DefaultMapping) tableNames(c *ferry.Change) *tableNames {
	k := tableKey{c.Source, c.DB, c.Table}
	if v, ok := m.names.Load(k); ok {
		return v.(*tableNames)
	}
	path := "/ferry/" + url.PathEscape(c.Source) + "/" + url.PathEscape(c.DB) + "/" + url.PathEscape(c.Table)
	u, err := url.Parse(path)
	if err != nil { // cannot happen for an escaped path; keep the raw text
		u = &url.URL{Path: path}
	}
	stem := c.DB + "." + c.Table
	n := &tableNames{
		source:     types.URIRef{URL: *u},
		typeStem:   m.typePrefix + "." + stem + ".",
		keyStem:    stem,
		keyStemSep: stem + "/",
		vals:       [2]ref.Val{celtypes.String(c.DB), celtypes.String(c.Table)},
		data:       newTableData(c.DB, c.Table),
	}
	for op := range n.types {
		n.types[op] = n.typeStem + ferry.Op(op).TypeSuffix()
	}
	v, _ := m.names.LoadOrStore(k, n)
	return v.(*tableNames)
}

// tableNamesOf is tableNames, remembering the last table in arena: a
// Worker's changes come in runs of one table, and comparing three strings
// that share their text is cheaper than hashing them for the map.
func (m *DefaultMapping) tableNamesOf(c *ferry.Change, arena *eventArena) *tableNames {
	if arena == nil {
		return m.tableNames(c)
	}
	k := tableKey{c.Source, c.DB, c.Table}
	if arena.last.names == nil || arena.last.key != k {
		arena.last.key, arena.last.names = k, m.tableNames(c)
	}
	return arena.last.names
}

// Event builds the default CloudEvent of c. scratch is a reusable encoding
// buffer; the returned buffer should be passed to the next call.
func (m *DefaultMapping) Event(c *ferry.Change, scratch []byte) (*event.Event, []byte) {
	return m.event(c, scratch, nil)
}

// event is Event with the event carved from arena.
func (m *DefaultMapping) event(c *ferry.Change, scratch []byte, arena *eventArena) (*event.Event, []byte) {
	if c.Request != nil && c.Request.Event != nil {
		return passThrough(c), scratch
	}
	var b eventBase
	scratch = m.base(c, &b, true, scratch, arena)
	return b.event(arena), scratch
}

// base fills b with the default attributes of c; the data payload only
// when withData is set (a rule with its own data skips encoding it).
func (m *DefaultMapping) base(c *ferry.Change, b *eventBase, withData bool, scratch []byte, arena *eventArena) []byte {
	if c.Request != nil {
		m.requestBase(c, b)
		return scratch
	}
	n := m.tableNamesOf(c, arena)
	b.id, b.source, b.typ, b.time = c.ID, n.source, n.typ(c.Op), c.Time
	b.partitionKey = n.keyStem
	if !c.Key.IsZero() {
		// One string holds both: the subject is the partition key's tail.
		b.partitionKey = keyWithStem(n.keyStemSep, c.Key, arena)
		b.subject = b.partitionKey[len(n.keyStemSep):]
	}
	if withData {
		scratch = n.data.appendChangeData(scratch[:0], c)
		b.data = arena.copy(scratch)
		b.encoded = true
	}
	return scratch
}

// keyWithStem is stem+Subject(key), for the common single-integer key
// (integers need no escaping) carved from arena (or one allocation).
func keyWithStem(stem string, key ferry.Row, arena *eventArena) string {
	if len(key.Values) == 1 {
		var buf [96]byte
		switch v := key.Values[0].(type) {
		case int64:
			return arena.text(strconv.AppendInt(append(buf[:0], stem...), v, 10))
		case uint64:
			return arena.text(strconv.AppendUint(append(buf[:0], stem...), v, 10))
		}
	}
	return stem + Subject(key)
}

// Subject renders a primary key as the CloudEvent subject (ferry.KeyText).
func Subject(key ferry.Row) string { return ferry.KeyText(key) }
