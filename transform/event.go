package transform

import (
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/ferry-cdc/ferry"
)

// eventBase holds an event's attributes while defaults (the default mapping
// or an outbox row) are overridden by a rule's expressions.
type eventBase struct {
	id         string
	source     types.URIRef
	typ        string
	subject    string // empty: no subject
	time       time.Time
	dataSchema string
	dataType   string // empty: application/json
	data       []byte
	// encoded marks data written by Ferry's own JSON encoder
	// (AppendChangeData): valid JSON by construction, raw JSON column
	// values having been checked when decoded.
	encoded      bool
	partitionKey string
	extensions   map[string]any
}

func (b *eventBase) setExtension(name string, v any) {
	if b.extensions == nil {
		b.extensions = map[string]any{}
	}
	b.extensions[name] = v
}

// eventAlloc keeps an event and everything its context points to
// together, carved from a Worker's eventArena (the default mapping and
// rules run once per change).
type eventAlloc struct {
	ev      event.Event
	ec      event.EventContextV1
	ct      string
	subject string
	ts      types.Timestamp
}

// event materializes the CloudEvent in arena (nil: its own allocation).
func (b *eventBase) event(arena *eventArena) *event.Event {
	a := arena.event(len(b.data))
	a.ct, a.subject, a.ts = b.dataType, b.subject, types.Timestamp{Time: b.time.UTC()}
	if a.ct == "" {
		a.ct = contentTypeJSON
	}
	a.ec = event.EventContextV1{ID: b.id, Source: b.source, Type: b.typ, DataContentType: &a.ct, Time: &a.ts}
	if b.subject != "" {
		a.ec.Subject = &a.subject
	}
	if b.dataSchema != "" {
		if u := types.ParseURI(b.dataSchema); u != nil {
			a.ec.DataSchema = u
		}
	}
	ext := b.extensions
	switch {
	case ext == nil:
		ext = make(map[string]any, 1)
		if b.partitionKey != "" {
			ext[PartitionKeyExtension] = b.partitionKey
		}
	case b.partitionKey != "":
		if _, set := ext[PartitionKeyExtension]; !set { // a rule's own wins
			ext[PartitionKeyExtension] = b.partitionKey
		}
	}
	a.ec.Extensions = ext
	a.ev = event.Event{Context: &a.ec, DataEncoded: b.data}
	if b.encoded && b.dataType == "" {
		// What MarkBinaryData would decide for JSON that is valid by
		// construction, without parsing every event's data again (that was
		// 15 % of the CPU of a bulk load to a discarding sink).
		a.ev.DataBase64 = !utf8.Valid(b.data)
	} else {
		ferry.MarkBinaryData(&a.ev)
	}
	return &a.ev
}
