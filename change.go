package ferry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Op is the kind of change a Change describes.
type Op uint8

// The operations of a row change. Their String forms are the values of the
// `op` field in event data and of the `op` variable in rules.
const (
	OpCreate Op = iota + 1
	OpUpdate
	OpDelete
	OpSnapshot
	// OpRequest is a request a request-driven source (a webhook) received.
	OpRequest
	// OpTruncate empties a table (TRUNCATE TABLE): no key, no images.
	OpTruncate
)

var opNames = [...]string{OpCreate: "create", OpUpdate: "update", OpDelete: "delete", OpSnapshot: "snapshot", OpRequest: "request",
	OpTruncate: "truncate"}

// opPastTense are the CloudEvent type suffixes of the default mapping.
var opPastTense = [...]string{OpCreate: "created", OpUpdate: "updated", OpDelete: "deleted", OpSnapshot: "snapshot", OpRequest: "request",
	OpTruncate: "truncated"}

// String returns create, update, delete, snapshot, request or truncate.
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// TypeSuffix returns the suffix the default CloudEvent type carries for this
// operation: created, updated, deleted, snapshot, request or truncated.
func (o Op) TypeSuffix() string {
	if int(o) < len(opPastTense) && opPastTense[o] != "" {
		return opPastTense[o]
	}
	return o.String()
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if n != "" && n == s {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("unknown op %q (want create, update, delete, snapshot, request or truncate)", s)
}

// Row is one image of a table row. Columns is shared by every row decoded with
// the same table metadata and must not be modified; Values is aligned with it.
// A Row with nil Columns is absent (no before image for an insert, no after
// image for a delete) and encodes as JSON null.
//
// Values hold only these types, already normalized by the source so that the
// JSON encoding is the contract's: nil, bool, int64, uint64, float32, float64,
// string (text, DECIMAL as exact digits, dates and times as ISO-8601),
// []byte (binary, encoded as base64), json.RawMessage (a JSON column, embedded)
// and []string (the labels of a SET).
type Row struct {
	Columns []string
	Values  []any
}

// IsZero reports whether the row is absent.
func (r Row) IsZero() bool { return r.Columns == nil }

// Get returns the value of the named column.
func (r Row) Get(column string) (any, bool) {
	for i, c := range r.Columns {
		if c == column {
			return r.Values[i], true
		}
	}
	return nil, false
}

// BinlogCoords locate a row change in a MySQL or MariaDB binary log.
type BinlogCoords struct {
	File     string // binlog file of the rows event
	Pos      uint64 // start offset of the rows event in File
	GTID     string // GTID of the transaction, empty when the server has none
	ServerID uint32 // server_id of the server that originally wrote the event
	TxID     string // transaction identity: the GTID, else FILE:POS of its first event
	TxOrder  int    // 1-based ordinal of this row change among all row changes of the transaction
}

// Change is one row change (or, for request-driven sources, one request).
// Sources fill every field they know; the pipeline and transforms treat a
// Change as immutable once Read returned it.
type Change struct {
	// ID is deterministic: the same change read again (after a restart, a
	// replay or a failover) carries the same ID. It becomes the CloudEvent id
	// of the default mapping.
	ID     string
	Op     Op
	Source string // name of the configured source that produced the change
	DB     string
	Table  string
	// Key holds the primary-key columns of the row (after image, or before
	// image for deletes). Zero when the table has no primary key.
	Key    Row
	Before Row
	After  Row
	// Time is the commit time of the change in the source system (for a
	// request: when it was received).
	Time   time.Time
	Binlog BinlogCoords
	// Request is set for request-driven sources (Op == OpRequest).
	Request *Request
	// To, when set, names the only sinks the change's events go to, in
	// place of the rules' routing (a backfill or replay with --to).
	To []string
	// Invalid, when set, says why the source could read this input but not
	// decode it (a Kafka record claiming the CloudEvents binding that
	// breaks it). No rule runs on it: the pipeline dead-letters the change
	// with this reason and moves on, so it neither blocks its stream nor
	// disappears.
	Invalid error
}

// Request is a received request, as a request-driven source (a webhook)
// recorded it before acknowledging it.
type Request struct {
	Method     string
	Path       string
	RemoteAddr string
	Header     http.Header
	Query      url.Values
	// ContentType is the media type of Data: application/json when the body
	// was parsed into JSON (JSON, form and XML bodies), else the request's.
	ContentType string
	Data        []byte
	// Event is set when the request carried a CloudEvent (binary,
	// structured or one of a batch); it passes through unchanged.
	Event *event.Event
	// Extensions are CloudEvent extensions taken from the request
	// (configured headers, traceparent).
	Extensions map[string]string
	// Kafka is set for a record a Kafka source consumed.
	Kafka *KafkaCoords
}

// KafkaCoords locate a consumed Kafka record; rules read them as
// source.topic, source.partition, source.offset and source.key.
type KafkaCoords struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
}

// Size estimates the memory a change holds while it is in flight, in
// bytes: the change itself (its values, boxed in interfaces, and their
// text) and the CloudEvent built from it (its context, extensions and JSON
// data, which repeats every column name and value), since the two coexist
// while a batch is transformed and the event, then the sink's encoding of
// it, holds about as much again until it is settled. Memory bounds (the
// pipeline's max_in_flight_bytes, a source's transaction buffer) weigh
// changes by it; it once counted only the values' text and missed most of
// the footprint (~450 of ~1,700 bytes for a five-column row, issue 18), so
// the bounds never bound. TestChangeSizeApproximatesHeap
// (transform/size_test.go) keeps it within 1.5x of the heap really held.
func (c *Change) Size() int {
	n := sizeChange + 2*len(c.ID)
	for _, r := range [...]Row{c.Before, c.After} {
		for i, v := range r.Values {
			n += sizePerValue + 2*valueLen(v)
			if i < len(r.Columns) {
				n += len(r.Columns[i])
			}
		}
	}
	// Key values share the images' text; only their slots are new.
	n += len(c.Key.Values) * sizePerKeyValue
	if c.Request != nil {
		n += 2 * len(c.Request.Data)
	}
	return n
}

// The constants of Size, fitted to the heap measured for narrow and wide
// rows (transform/size_test.go): a change and its event hold ~1.2 KB
// whatever their values (the Change, the event's context, extension map,
// id, type and subject), and each value ~60 bytes beyond its text (its
// interface slot and box, size-class rounding, its JSON punctuation).
const (
	sizeChange      = 1200
	sizePerValue    = 56
	sizePerKeyValue = 24
)

// valueLen is the length of a value's text or bytes, 8 for a number.
func valueLen(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x) * 4 / 3 // held raw, encoded as base64
	case json.RawMessage:
		return len(x)
	case []string:
		n := 0
		for _, s := range x {
			n += len(s) + 16
		}
		return n
	default:
		return 8
	}
}

// BatchSize is the sum of the Size of a batch's changes.
func BatchSize(changes []Change) int64 {
	var n int64
	for i := range changes {
		n += int64(changes[i].Size())
	}
	return n
}
