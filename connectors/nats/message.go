package nats

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	natsgo "github.com/nats-io/nats.go"

	"github.com/ferry-cdc/ferry"
)

// Header names of the CloudEvents NATS protocol binding: in binary mode
// every attribute is a header named ce-<attribute>, except datacontenttype,
// which is content-type; in structured mode content-type names the format.
const (
	headerPrefix      = "ce-"
	headerContentType = "content-type"
	structuredType    = "application/cloudevents+json"
)

// message builds the NATS message of e on subject.
func (s *Sink) message(subject string, e *event.Event) (*natsgo.Msg, error) {
	m := natsgo.NewMsg(subject)
	if s.cfg.Mode == "structured" {
		b, err := ferry.MarshalStructured(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID(), err)
		}
		m.Data = b
		m.Header.Set(headerContentType, structuredType)
		return m, nil
	}
	m.Data = e.Data()
	set := func(name, v string) error {
		if v == "" {
			return nil
		}
		// A header value ends at a line break, and the reader trims the
		// white space around it: such a value cannot travel exactly.
		if strings.ContainsAny(v, "\r\n") || strings.Trim(v, " \t") != v {
			return ferry.Permanent(fmt.Errorf("event %s: %s has a line break or surrounding white space, which a NATS header cannot carry (use mode: structured)", e.ID(), name))
		}
		m.Header.Set(name, v)
		return nil
	}
	attrs := [][2]string{
		{headerPrefix + "specversion", e.SpecVersion()}, {headerPrefix + "id", e.ID()},
		{headerPrefix + "source", e.Source()}, {headerPrefix + "type", e.Type()},
		{headerContentType, e.DataContentType()}, {headerPrefix + "subject", e.Subject()},
		{headerPrefix + "dataschema", e.DataSchema()},
	}
	if t := e.Time(); !t.IsZero() {
		attrs = append(attrs, [2]string{headerPrefix + "time", t.UTC().Format(time.RFC3339Nano)})
	}
	for name, v := range e.Extensions() {
		text, err := types.Format(v)
		if err != nil {
			return nil, ferry.Permanent(fmt.Errorf("event %s: extension %s: %w", e.ID(), name, err))
		}
		attrs = append(attrs, [2]string{headerPrefix + name, text})
	}
	for _, a := range attrs {
		if err := set(a[0], a[1]); err != nil {
			return nil, err
		}
	}
	return m, nil
}
