package kafkawire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of the CloudEvents Kafka protocol binding.
const (
	HeaderPrefix      = "ce_"
	HeaderContentType = "content-type"
	StructuredType    = "application/cloudevents+json"
)

// ErrNotCloudEvent is returned by Decode for a record that does not claim
// the binding: no ce_specversion header and no CloudEvents content type.
var ErrNotCloudEvent = errors.New("not a CloudEvents record")

// Message reads a Kafka record as the CloudEvents Kafka protocol binding
// defines it, through the SDK's generic binding machinery: a content-type
// the SDK knows as an event format means structured mode; else a
// ce_specversion header means binary mode, with ce_* headers as attributes
// or extensions, content-type as datacontenttype and the value as the data.
// Header names are compared lower-cased.
type Message struct {
	value   []byte
	headers map[string][]byte
	format  format.Format
	version spec.Version
}

var (
	_        binding.MessageMetadataReader = (*Message)(nil)
	ceHeader                               = spec.WithPrefix(HeaderPrefix)
)

// NewMessage wraps r; it keeps references to r's value and header values.
func NewMessage(r *kgo.Record) *Message {
	m := &Message{value: r.Value, headers: make(map[string][]byte, len(r.Headers))}
	for _, h := range r.Headers {
		m.headers[strings.ToLower(h.Key)] = h.Value
	}
	if f := format.Lookup(string(m.headers[HeaderContentType])); f != nil {
		m.format = f
	} else {
		m.version = ceHeader.Version(string(m.headers[ceHeader.PrefixedSpecVersionName()]))
	}
	return m
}

// Claims reports whether r says it carries a CloudEvent: a ce_specversion
// header (binary mode) or a content type of application/cloudevents
// (structured mode), whether or not what follows is valid.
func Claims(r *kgo.Record) bool {
	for _, h := range r.Headers {
		switch k := strings.ToLower(h.Key); {
		case k == HeaderPrefix+"specversion":
			return true
		case k == HeaderContentType && strings.HasPrefix(strings.ToLower(string(h.Value)), "application/cloudevents"):
			return true
		}
	}
	return false
}

// Decode returns the CloudEvent r carries by the binding, validated. A
// record that does not claim the binding is ErrNotCloudEvent; one that
// claims it but breaks it (an unknown specversion or event format, a
// missing required attribute, a malformed structured body) is an error
// saying what is wrong.
func Decode(ctx context.Context, r *kgo.Record) (*event.Event, error) {
	if !Claims(r) {
		return nil, ErrNotCloudEvent
	}
	m := NewMessage(r)
	if m.ReadEncoding() == binding.EncodingUnknown {
		if m.format == nil && m.headers[ceHeader.PrefixedSpecVersionName()] == nil {
			return nil, fmt.Errorf("content-type %q is no CloudEvents event format this binding reads (want %s)",
				m.headers[HeaderContentType], StructuredType)
		}
		return nil, fmt.Errorf("unsupported ce_specversion %q", m.headers[ceHeader.PrefixedSpecVersionName()])
	}
	e, err := binding.ToEvent(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("decode CloudEvent: %w", err)
	}
	if m.version != nil {
		m.keepExact(e)
	}
	if err := e.Validate(); err != nil {
		// The SDK lists one attribute per line; a dead letter's reason
		// and a log line are one line.
		return nil, fmt.Errorf("invalid CloudEvent: %s", strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; "))
	}
	return e, nil
}

// keepExact puts back the header text of string attributes and
// extensions the SDK's setters trimmed (white space, NEL): an event passes
// through byte for byte, as the Kafka sink wrote it.
func (m *Message) keepExact(e *event.Event) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return
	}
	for k, v := range m.headers {
		name, ok := strings.CutPrefix(k, HeaderPrefix)
		if !ok || len(v) == 0 {
			continue
		}
		text := string(v)
		switch name {
		case "id":
			ec.ID = text
		case "type":
			ec.Type = text
		case "subject":
			ec.Subject = &text
		case "specversion", "source", "time", "dataschema", "datacontenttype":
		default:
			if s, isString := ec.Extensions[name].(string); isString && s != text {
				ec.Extensions[name] = text
			}
		}
	}
}

// ReadEncoding implements binding.MessageMetadataReader.
func (m *Message) ReadEncoding() binding.Encoding {
	switch {
	case m.format != nil:
		return binding.EncodingStructured
	case m.version != nil:
		return binding.EncodingBinary
	}
	return binding.EncodingUnknown
}

// ReadStructured implements binding.Message.
func (m *Message) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.format == nil {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, m.format, bytes.NewReader(m.value))
}

// ReadBinary implements binding.Message.
func (m *Message) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	if m.version == nil {
		return binding.ErrNotBinary
	}
	for k, v := range m.headers {
		var err error
		switch {
		case strings.HasPrefix(k, HeaderPrefix):
			if attr := m.version.Attribute(k); attr != nil {
				err = w.SetAttribute(attr, string(v))
			} else {
				err = w.SetExtension(strings.TrimPrefix(k, HeaderPrefix), string(v))
			}
		case k == HeaderContentType:
			err = w.SetAttribute(m.version.AttributeFromKind(spec.DataContentType), string(v))
		}
		if err != nil {
			return err
		}
	}
	if m.value != nil {
		return w.SetData(bytes.NewReader(m.value))
	}
	return nil
}

// GetAttribute implements binding.MessageMetadataReader.
func (m *Message) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if m.version == nil {
		return nil, nil
	}
	if attr := m.version.AttributeFromKind(k); attr != nil {
		return attr, string(m.headers[attr.PrefixedName()])
	}
	return nil, nil
}

// GetExtension implements binding.MessageMetadataReader.
func (m *Message) GetExtension(name string) any { return string(m.headers[HeaderPrefix+name]) }

// Finish implements binding.Message.
func (m *Message) Finish(error) error { return nil }
