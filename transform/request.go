package transform

import (
	"net/url"
	"sync"

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

type sourceNames struct {
	source types.URIRef
	typ    string
}

// requestNames caches per-source strings, like tableNames for rows.
var requestNamesCache sync.Map // [2]string{prefix, source} -> *sourceNames

func requestNames(prefix, source string) *sourceNames {
	k := [2]string{prefix, source}
	if v, ok := requestNamesCache.Load(k); ok {
		return v.(*sourceNames)
	}
	u, err := url.Parse("/ferry/" + url.PathEscape(source))
	if err != nil {
		u = &url.URL{Path: "/ferry/" + source}
	}
	v, _ := requestNamesCache.LoadOrStore(k, &sourceNames{source: types.URIRef{URL: *u}, typ: prefix + ".webhook." + source})
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
	n := requestNames(m.typePrefix, c.Source)
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
