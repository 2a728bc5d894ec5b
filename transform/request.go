package transform

import (
	"net/url"
	"sync"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/ferry-cdc/ferry"
)

// The default event of a webhook request:
//
//	id      the delivery id, else a UUID fixed before the request was answered
//	source  /ferry/<source name>
//	type    <type_prefix>.webhook.<source name>
//	time    when the request was received
//	data    the body: JSON stays JSON (form and XML bodies parsed to JSON),
//	        other content types keep their datacontenttype
//	extensions: traceparent/tracestate and configured headers
//
// A request that carried a CloudEvent passes it through unchanged.
//
// The default event of a Kafka record is the same but for
//
//	id      <topic>/<partition>/<offset>
//	type    <type_prefix>.kafka.<source name>
//	subject the record key, when it is UTF-8 text
//	extensions: partitionkey, the record key, keeps per-key order downstream

type sourceNames struct {
	source types.URIRef
	typ    string
}

// requestNames caches per-source strings, like tableNames for rows.
var requestNamesCache sync.Map // [3]string{prefix, kind, source} -> *sourceNames

// requestNames returns the source URI and type of source's default events;
// kind is webhook or kafka.
func requestNames(prefix, kind, source string) *sourceNames {
	k := [3]string{prefix, kind, source}
	if v, ok := requestNamesCache.Load(k); ok {
		return v.(*sourceNames)
	}
	u, err := url.Parse("/ferry/" + url.PathEscape(source))
	if err != nil {
		u = &url.URL{Path: "/ferry/" + source}
	}
	v, _ := requestNamesCache.LoadOrStore(k, &sourceNames{source: types.URIRef{URL: *u}, typ: prefix + "." + kind + "." + source})
	return v.(*sourceNames)
}

// requestBase fills b with the default attributes of a request change.
func (m *DefaultMapping) requestBase(c *ferry.Change, b *eventBase) {
	req := c.Request
	if e := req.Event; e != nil {
		b.id, b.typ, b.subject, b.time = e.ID(), e.Type(), e.Subject(), e.Time()
		if u := types.ParseURIRef(e.Source()); u != nil {
			b.source = *u
		}
		b.dataSchema, b.dataType, b.data = e.DataSchema(), e.DataContentType(), e.Data()
		for k, v := range e.Extensions() {
			b.setExtension(k, v)
		}
		return
	}
	kind := "webhook"
	if k := req.Kafka; k != nil {
		kind = "kafka"
		if len(k.Key) > 0 && utf8.Valid(k.Key) {
			b.subject = string(k.Key)
		}
	}
	n := requestNames(m.typePrefix, kind, c.Source)
	b.id, b.source, b.typ, b.time = c.ID, n.source, n.typ, c.Time
	b.dataType, b.data = req.ContentType, req.Data
	for k, v := range req.Extensions {
		b.setExtension(k, v)
	}
}

// passThrough returns a copy of the CloudEvent a request carried.
func passThrough(c *ferry.Change) *event.Event {
	e := c.Request.Event.Clone()
	ferry.MarkBinaryData(&e)
	return &e
}
