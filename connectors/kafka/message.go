package kafka

import (
	"encoding/json"
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

// record builds the Kafka record of e. Binary-mode headers are
// written here rather than through the SDK's binding writer: the
// binding's generic path measured ~108k msg/s on this machine, below the
// sink's target; tests decode what this writes by the CloudEvents Kafka
// binding's rules through the SDK's binding machinery to keep it conformant.
func (s *Sink) record(e *event.Event) (*kgo.Record, error) {
	topic := s.cfg.Topic
	if s.topic != nil {
		var err error
		if topic, err = topicOf(s.topic, e); err != nil {
			return nil, err
		}
	}
	msg := &kgo.Record{Topic: topic, Timestamp: e.Time()}
	if k := s.key(e); k != "" {
		msg.Key = []byte(k)
	}
	if s.cfg.Mode == "structured" {
		v, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
		msg.Value = v
		msg.Headers = []kgo.RecordHeader{{Key: headerContentType, Value: []byte(structuredType)}}
		return msg, nil
	}
	msg.Value = e.Data()
	msg.Headers = s.binaryHeaders(e)
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

var specVersion1 = []byte("1.0")

// appendTrace adds the W3C trace context as plain traceparent and
// tracestate headers, the convention Kafka instrumentations (OpenTelemetry
// among them) read, in both modes; binary mode also carries the event's
// extension as ce_traceparent.
func appendTrace(h []kgo.RecordHeader, l tracectx.Lookup, i int, e *event.Event) []kgo.RecordHeader {
	tp, ts := l.For(i, e)
	if tp == "" {
		return h
	}
	h = append(h, kgo.RecordHeader{Key: hTraceparent, Value: []byte(tp)})
	if ts != "" {
		h = append(h, kgo.RecordHeader{Key: hTracestate, Value: []byte(ts)})
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

// binaryHeaders writes the binding's headers. Their values share one
// buffer (one allocation per record instead of one per header, issue 18);
// each is a full slice expression, so no reader can append into the next.
func (s *Sink) binaryHeaders(e *event.Event) []kgo.RecordHeader {
	ext := extensions(e)
	h := make([]kgo.RecordHeader, 0, 10+len(ext)) // room for appendTrace
	source := e.Source()
	size := len(e.ID()) + len(source) + len(e.Type()) + len(e.DataContentType()) + len(e.Subject()) + len(e.DataSchema()) + len(time.RFC3339Nano) + 8
	type extText struct{ header, text string }
	exts := make([]extText, 0, len(ext))
	for name, v := range ext {
		t := extText{s.extensionHeader(name), extensionText(v)}
		exts = append(exts, t)
		size += len(t.text)
	}
	buf := make([]byte, 0, size)
	add := func(k string, v string) {
		if v != "" {
			start := len(buf)
			buf = append(buf, v...)
			h = append(h, kgo.RecordHeader{Key: k, Value: buf[start:len(buf):len(buf)]})
		}
	}
	if e.SpecVersion() == event.CloudEventsVersionV1 {
		h = append(h, kgo.RecordHeader{Key: hSpecVersion, Value: specVersion1})
	} else {
		add(hSpecVersion, e.SpecVersion())
	}
	add(hID, e.ID())
	add(hSource, source)
	add(hType, e.Type())
	add(hContentType, e.DataContentType())
	add(hSubject, e.Subject())
	add(hDataSchema, e.DataSchema())
	if t := e.Time(); !t.IsZero() {
		start := len(buf)
		buf = t.UTC().AppendFormat(buf, time.RFC3339Nano)
		h = append(h, kgo.RecordHeader{Key: hTime, Value: buf[start:len(buf):len(buf)]})
	}
	for _, x := range exts {
		add(x.header, x.text)
	}
	return h
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
