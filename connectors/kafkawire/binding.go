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

	"github.com/ferry-cdc/ferry/internal/jsonscan"
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
// Header names are compared lower-cased; of a name given twice the last
// value counts.
type Message struct {
	value []byte
	// headers are few (a record's), so a slice searched in order costs
	// less than a map; values are text once, shared with the caller.
	headers []header
	format  format.Format
	version spec.Version
}

type header struct{ name, value string }

var (
	_        binding.MessageMetadataReader = (*Message)(nil)
	ceHeader                               = spec.WithPrefix(HeaderPrefix)
)

// NewMessage wraps r; it keeps a reference to r's value.
func NewMessage(r *kgo.Record) *Message { return newMessage(r, HeaderTexts(r)) }

// HeaderTexts returns the values of r's headers as text, in order, all
// sharing one allocation.
func HeaderTexts(r *kgo.Record) []string {
	n := 0
	for _, h := range r.Headers {
		n += len(h.Value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, h := range r.Headers {
		b.Write(h.Value)
	}
	all := b.String()
	out := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		out[i], all = all[:len(h.Value)], all[len(h.Value):]
	}
	return out
}

func newMessage(r *kgo.Record, texts []string) *Message {
	m := &Message{value: r.Value, headers: make([]header, 0, len(r.Headers))}
	for i, h := range r.Headers {
		m.set(strings.ToLower(h.Key), texts[i])
	}
	ct, _ := m.get(HeaderContentType)
	if f := format.Lookup(ct); f != nil {
		m.format = f
	} else {
		v, _ := m.get(ceHeader.PrefixedSpecVersionName())
		m.version = ceHeader.Version(v)
	}
	return m
}

func (m *Message) set(name, value string) {
	for i := range m.headers {
		if m.headers[i].name == name {
			m.headers[i].value = value
			return
		}
	}
	m.headers = append(m.headers, header{name, value})
}

func (m *Message) get(name string) (string, bool) {
	for _, h := range m.headers {
		if h.name == name {
			return h.value, true
		}
	}
	return "", false
}

// Claims reports whether r says it carries a CloudEvent: a ce_specversion
// header (binary mode) or a content type of application/cloudevents
// (structured mode), whether or not what follows is valid.
func Claims(r *kgo.Record) bool {
	const ceType = "application/cloudevents"
	for _, h := range r.Headers {
		switch {
		case asciiFold(h.Key, HeaderPrefix+"specversion"):
			return true
		case asciiFold(h.Key, HeaderContentType) && len(h.Value) >= len(ceType) &&
			asciiFold(string(h.Value[:len(ceType)]), ceType):
			return true
		}
	}
	return false
}

// asciiFold reports whether s lower-cased is lower: ASCII letters only,
// as strings.ToLower compares these names (strings.EqualFold would also
// match ſ to s), without allocating.
func asciiFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
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
	return decode(ctx, newMessage(r, HeaderTexts(r)))
}

// DecodeTexts is Decode for a caller that has r's header values as text
// already (HeaderTexts): the event's attributes share them.
func DecodeTexts(ctx context.Context, r *kgo.Record, texts []string) (*event.Event, error) {
	if !Claims(r) {
		return nil, ErrNotCloudEvent
	}
	return decode(ctx, newMessage(r, texts))
}

func decode(ctx context.Context, m *Message) (*event.Event, error) {
	if m.ReadEncoding() == binding.EncodingUnknown {
		ct, _ := m.get(HeaderContentType)
		sv, hasSV := m.get(ceHeader.PrefixedSpecVersionName())
		if m.format == nil && !hasSV {
			return nil, fmt.Errorf("content-type %q is no CloudEvents event format this binding reads (want %s)",
				ct, StructuredType)
		}
		return nil, fmt.Errorf("unsupported ce_specversion %q", sv)
	}
	var e *event.Event
	var err error
	if m.format != nil {
		ev := event.New()
		e, err = &ev, m.unmarshal(&ev)
	} else {
		e, err = binding.ToEvent(ctx, m)
	}
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

// unmarshal does what binding.ToEvent does for a structured message,
// without first copying the value into a buffer of its own. A JSON value
// that is valid (jsonscan, encoding/json's verdict at three times its
// speed) goes straight to the event's UnmarshalJSON, which encoding/json
// would call after scanning it once more; an invalid one through the
// format for the usual error.
func (m *Message) unmarshal(e *event.Event) error {
	if m.format == format.JSON && jsonscan.Valid(m.value) {
		return e.UnmarshalJSON(m.value)
	}
	return m.format.Unmarshal(m.value, e)
}

// keepExact puts back the header text of string attributes and
// extensions the SDK's setters trimmed (white space, NEL): an event passes
// through byte for byte, as the Kafka sink wrote it.
func (m *Message) keepExact(e *event.Event) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return
	}
	for _, h := range m.headers {
		name, ok := strings.CutPrefix(h.name, HeaderPrefix)
		if !ok || h.value == "" {
			continue
		}
		switch name {
		case "id":
			ec.ID = h.value
		case "type":
			ec.Type = h.value
		case "subject":
			if ec.Subject == nil || *ec.Subject != h.value {
				text := h.value // escapes only here
				ec.Subject = &text
			}
		case "specversion", "source", "time", "dataschema", "datacontenttype":
		default:
			if s, isString := ec.Extensions[name].(string); isString && s != h.value {
				ec.Extensions[name] = h.value
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
	for _, h := range m.headers {
		var err error
		switch {
		case strings.HasPrefix(h.name, HeaderPrefix):
			if attr := m.version.Attribute(h.name); attr != nil {
				err = w.SetAttribute(attr, h.value)
			} else {
				err = w.SetExtension(strings.TrimPrefix(h.name, HeaderPrefix), h.value)
			}
		case h.name == HeaderContentType:
			err = w.SetAttribute(m.version.AttributeFromKind(spec.DataContentType), h.value)
		}
		if err != nil {
			return err
		}
	}
	if m.value != nil {
		// A *bytes.Buffer is taken as the data as it is, not copied.
		return w.SetData(bytes.NewBuffer(m.value))
	}
	return nil
}

// GetAttribute implements binding.MessageMetadataReader.
func (m *Message) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if m.version == nil {
		return nil, nil
	}
	if attr := m.version.AttributeFromKind(k); attr != nil {
		v, _ := m.get(attr.PrefixedName())
		return attr, v
	}
	return nil, nil
}

// GetExtension implements binding.MessageMetadataReader.
func (m *Message) GetExtension(name string) any {
	v, _ := m.get(HeaderPrefix + name)
	return v
}

// Finish implements binding.Message.
func (m *Message) Finish(error) error { return nil }
