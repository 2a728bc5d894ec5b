package kafka

import (
	"bytes"
	"context"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/twmb/franz-go/pkg/kgo"
)

// recordMessage reads a Kafka record as the CloudEvents Kafka protocol
// binding defines it, through the SDK's generic binding machinery: a
// content-type the SDK knows as an event format means structured mode;
// else a ce_specversion header means binary mode, with ce_* headers as
// attributes or extensions, content-type as datacontenttype and the value
// as the data. Header names are compared lower-cased.
type recordMessage struct {
	value   []byte
	headers map[string][]byte
	format  format.Format
	version spec.Version
}

var (
	_        binding.MessageMetadataReader = (*recordMessage)(nil)
	ceHeader                               = spec.WithPrefix(headerPrefix)
)

func newRecordMessage(r *kgo.Record) *recordMessage {
	m := &recordMessage{value: r.Value, headers: make(map[string][]byte, len(r.Headers))}
	for _, h := range r.Headers {
		m.headers[strings.ToLower(h.Key)] = h.Value
	}
	if f := format.Lookup(string(m.headers[headerContentType])); f != nil {
		m.format = f
	} else {
		m.version = ceHeader.Version(string(m.headers[ceHeader.PrefixedSpecVersionName()]))
	}
	return m
}

func (m *recordMessage) ReadEncoding() binding.Encoding {
	switch {
	case m.format != nil:
		return binding.EncodingStructured
	case m.version != nil:
		return binding.EncodingBinary
	}
	return binding.EncodingUnknown
}

func (m *recordMessage) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	if m.format == nil {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, m.format, bytes.NewReader(m.value))
}

func (m *recordMessage) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	if m.version == nil {
		return binding.ErrNotBinary
	}
	for k, v := range m.headers {
		var err error
		switch {
		case strings.HasPrefix(k, headerPrefix):
			if attr := m.version.Attribute(k); attr != nil {
				err = w.SetAttribute(attr, string(v))
			} else {
				err = w.SetExtension(strings.TrimPrefix(k, headerPrefix), string(v))
			}
		case k == headerContentType:
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

func (m *recordMessage) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	if attr := m.version.AttributeFromKind(k); attr != nil {
		return attr, string(m.headers[attr.PrefixedName()])
	}
	return nil, nil
}

func (m *recordMessage) GetExtension(name string) any { return string(m.headers[headerPrefix+name]) }

func (m *recordMessage) Finish(error) error { return nil }
