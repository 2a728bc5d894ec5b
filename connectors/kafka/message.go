package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// Header names of the CloudEvents Kafka protocol binding.
const (
	headerPrefix      = kafkawire.HeaderPrefix
	headerContentType = kafkawire.HeaderContentType
	structuredType    = kafkawire.StructuredType
)

// recordArena holds the records of one Write and the bytes and headers
// they point into: a few allocations per Write instead of several per
// record (issue 18). Each record's slices are full slice expressions, so
// an append to one (appendTrace) never writes into the next. Everything
// lives as long as the Write's records: franz-go drops them once each
// has its outcome.
type recordArena struct {
	recs []kgo.Record
	hdrs []kgo.RecordHeader
	buf  []byte
	left int // records not built yet, the current one included: sizes refills
}

// The most a refill allocates ahead (bytes; headers, of 40 bytes each),
// so a large Write takes a few chunks and a single event no more than it
// needs.
const (
	arenaChunk   = 64 << 10
	arenaHeaders = 1 << 10
)

func newRecordArena(n int) *recordArena { return &recordArena{recs: make([]kgo.Record, n), left: n} }

// next moves to the next record.
func (a *recordArena) next() { a.left-- }

// headers returns room for n headers.
func (a *recordArena) headers(n int) []kgo.RecordHeader {
	if cap(a.hdrs)-len(a.hdrs) < n {
		a.hdrs = make([]kgo.RecordHeader, 0, a.refill(n, arenaHeaders))
	}
	start := len(a.hdrs)
	a.hdrs = a.hdrs[:start+n]
	return a.hdrs[start : start : start+n]
}

// bytes returns an empty slice with room for n bytes.
func (a *recordArena) bytes(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, a.refill(n, arenaChunk))
	}
	start := len(a.buf)
	a.buf = a.buf[:start+n]
	return a.buf[start : start : start+n]
}

// refill is the size of a new chunk when a record needs n: room for the
// records left if they are alike, at most most, at least n.
func (a *recordArena) refill(n, most int) int {
	return max(n, min(most, n*max(a.left, 1)))
}

// record builds the Kafka record of e in a's i-th slot. Binary-mode
// headers are written here rather than through the SDK's binding writer:
// the binding's generic path measured ~108k msg/s on this machine, below
// the sink's target; tests decode what this writes by the CloudEvents
// Kafka binding's rules through the SDK's binding machinery to keep it
// conformant.
// extra is the room to leave for headers appended after (appendTrace).
func (s *Sink) record(a *recordArena, i int, e *event.Event, extra int) (*kgo.Record, error) {
	topic := s.cfg.Topic
	if s.topic != nil {
		var err error
		if topic, err = topicOf(s.topic, e); err != nil {
			return nil, err
		}
	}
	defer a.next()
	msg := &a.recs[i]
	msg.Topic, msg.Timestamp = topic, e.Time()
	if k := s.key(e); k != "" {
		msg.Key = append(a.bytes(len(k)), k...)
	}
	if s.cfg.Mode == "structured" {
		v, err := ferry.MarshalStructured(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
		msg.Value = v
		msg.Headers = append(a.headers(1+extra), kgo.RecordHeader{Key: headerContentType, Value: structuredTypeBytes})
		return msg, nil
	}
	msg.Value = e.Data()
	msg.Headers = s.binaryHeaders(a, e, extra)
	return msg, nil
}

// extensions returns the event's extension map without the copy
// event.Extensions() makes (read-only use).
func extensions(e *event.Event) map[string]any {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		return ec.Extensions
	}
	return e.Extensions()
}

// Header names of the binding's attributes.
const (
	hSpecVersion = headerPrefix + "specversion"
	hID          = headerPrefix + "id"
	hSource      = headerPrefix + "source"
	hType        = headerPrefix + "type"
	hContentType = headerContentType
	hSubject     = headerPrefix + "subject"
	hDataSchema  = headerPrefix + "dataschema"
	hTime        = headerPrefix + "time"
	hTraceparent = tracectx.Traceparent
	hTracestate  = tracectx.Tracestate
)

// maxAttributes is how many of the binding's attribute headers an event
// has at most: specversion, id, source, type, content type, subject,
// dataschema, time.
const maxAttributes = 8

// Shared header values; nothing writes into a header's value.
var (
	specVersion1        = []byte("1.0")
	structuredTypeBytes = []byte(structuredType)
)

// traceHeaders is how many headers appendTrace adds for tp and ts.
func traceHeaders(tp, ts string) int {
	switch {
	case tp == "":
		return 0
	case ts == "":
		return 1
	}
	return 2
}

// appendTrace adds the W3C trace context (tp, ts: tracectx.Lookup.For) as
// plain traceparent and tracestate headers, the convention Kafka
// instrumentations (OpenTelemetry among them) read, in both modes; binary
// mode also carries the event's extension as ce_traceparent. The values
// are copied into a.
func appendTrace(a *recordArena, h []kgo.RecordHeader, tp, ts string) []kgo.RecordHeader {
	if tp == "" {
		return h
	}
	h = append(h, kgo.RecordHeader{Key: hTraceparent, Value: append(a.bytes(len(tp)), tp...)})
	if ts != "" {
		h = append(h, kgo.RecordHeader{Key: hTracestate, Value: append(a.bytes(len(ts)), ts...)})
	}
	return h
}

func (s *Sink) key(e *event.Event) string {
	switch s.cfg.Key {
	case "subject":
		return e.Subject()
	case "id":
		return e.ID()
	case "none":
		return ""
	}
	return ferry.OrderingKey(e)
}

// binaryHeaders writes the binding's headers into a, with room left for
// extra more (appendTrace's). The values most events share (type, source, content type,
// time to the microsecond) point into s.shared rather than being copied
// or formatted per record (issue 18); the rest are copied into a.
func (s *Sink) binaryHeaders(a *recordArena, e *event.Event, extra int) []kgo.RecordHeader {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return s.binaryHeadersAny(a, e, extra)
	}
	ext := ec.Extensions
	subject, ct, schema := "", "", ""
	if ec.Subject != nil {
		subject = *ec.Subject
	}
	if ec.DataContentType != nil {
		ct = *ec.DataContentType
	}
	if ec.DataSchema != nil {
		schema = ec.DataSchema.String()
	}
	hasTime := ec.Time != nil && !ec.Time.IsZero()
	// Room for the headers this event has, not for every attribute: the
	// header slices are the largest part of a Write's arena (40 bytes a
	// header; issue 18). Counting too many only wastes room, too few
	// only makes append copy (the slice's capacity ends with it).
	h := a.headers(maxAttributes - count(subject == "", ct == "", schema == "", !hasTime) + len(ext) + extra)
	buf := a.bytes(len(ec.ID) + len(subject) + len(schema))
	add := func(k string, v string) {
		if v != "" {
			start := len(buf)
			buf = append(buf, v...)
			h = append(h, kgo.RecordHeader{Key: k, Value: buf[start:len(buf):len(buf)]})
		}
	}
	h = append(h, kgo.RecordHeader{Key: hSpecVersion, Value: specVersion1})
	add(hID, ec.ID)
	h = appendShared(h, hSource, s.source(e))
	h = appendShared(h, hType, s.shared.types.bytes(ec.Type))
	h = appendShared(h, hContentType, s.shared.contentTypes.bytes(ct))
	add(hSubject, subject)
	add(hDataSchema, schema)
	if hasTime {
		h = append(h, kgo.RecordHeader{Key: hTime, Value: s.shared.timeText(ec.Time.Time)})
	}
	// One pass over the extensions (starting a map's iteration is most of
	// what a one-entry map costs), each value in room of its own.
	for name, v := range ext {
		if txt := extensionText(v); txt != "" {
			b := append(a.bytes(len(txt)), txt...)
			h = append(h, kgo.RecordHeader{Key: s.extensionHeader(name), Value: b[:len(b):len(b)]})
		}
	}
	return h
}

// count is how many of bs are true.
func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// appendShared appends a header whose value is shared, if it has one.
func appendShared(h []kgo.RecordHeader, k string, v []byte) []kgo.RecordHeader {
	if len(v) == 0 {
		return h
	}
	return append(h, kgo.RecordHeader{Key: k, Value: v})
}

// binaryHeadersAny is binaryHeaders for an event of another spec version
// (Ferry builds only 1.0 events): everything copied into a.
func (s *Sink) binaryHeadersAny(a *recordArena, e *event.Event, extra int) []kgo.RecordHeader {
	ext := e.Extensions()
	h := a.headers(maxAttributes + len(ext) + extra)
	size := len(e.SpecVersion()) + len(e.ID()) + len(e.Source()) + len(e.Type()) + len(e.DataContentType()) + len(e.Subject()) + len(e.DataSchema()) + len(time.RFC3339Nano) + 8
	for _, v := range ext {
		size += len(extensionText(v))
	}
	buf := a.bytes(size)
	add := func(k string, v string) {
		if v != "" {
			start := len(buf)
			buf = append(buf, v...)
			h = append(h, kgo.RecordHeader{Key: k, Value: buf[start:len(buf):len(buf)]})
		}
	}
	add(hSpecVersion, e.SpecVersion())
	add(hID, e.ID())
	add(hSource, e.Source())
	add(hType, e.Type())
	add(hContentType, e.DataContentType())
	add(hSubject, e.Subject())
	add(hDataSchema, e.DataSchema())
	if t := e.Time(); !t.IsZero() {
		start := len(buf)
		buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
		h = append(h, kgo.RecordHeader{Key: hTime, Value: buf[start:len(buf):len(buf)]})
	}
	for name, v := range ext {
		add(s.extensionHeader(name), extensionText(v))
	}
	return h
}

// source is e's source as header bytes. e.Source() formats the source URL
// anew on every call: the last one is kept (a stream's events share a few
// sources).
func (s *Sink) source(e *event.Event) []byte {
	ec := e.Context.(*event.EventContextV1) // binaryHeaders checked
	last := &s.shared.lastSource
	if last.value == nil || ec.Source.URL != last.url {
		last.url, last.value = ec.Source.URL, s.shared.sources.bytes(ec.Source.String())
	}
	return last.value
}

// extensionHeader caches "ce_<name>"; Write runs on one goroutine.
func (s *Sink) extensionHeader(name string) string {
	k, ok := s.extHeaders[name]
	if !ok {
		k = headerPrefix + name
		s.extHeaders[name] = k
	}
	return k
}

// extensionText formats an extension value as the binding's canonical
// string (what the SDK's types.Format does).
func extensionText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case bool:
		return strconv.FormatBool(x)
	}
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}
