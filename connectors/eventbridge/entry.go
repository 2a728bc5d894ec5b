package eventbridge

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// PutEvents limits, as documented by AWS.
const (
	maxEntries      = 10
	maxRequestBytes = 256 * 1024 // of the entries, sized as below
	maxDetailType   = 128
	maxSource       = 256
	timeBytes       = 14 // an entry with a Time counts 14 bytes for it
)

// entrySize is an entry's size as AWS counts it toward the 256 KB limit:
// 14 bytes for Time, plus the UTF-8 bytes of Source, DetailType, Detail
// and every Resource.
func entrySize(e *types.PutEventsRequestEntry) int {
	n := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	if e.Time != nil {
		n += timeBytes
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// entry maps a CloudEvent to a PutEvents entry.
func (s *Sink) entry(e *event.Event) (*types.PutEventsRequestEntry, error) {
	src := s.cfg.Source
	if src == "" {
		src = e.Source()
		if strings.HasPrefix(src, "aws.") {
			src = s.cfg.SourcePrefix + src // EventBridge reserves aws.* for AWS services
		}
	}
	if src == "" || len(src) > maxSource {
		return nil, fmt.Errorf("source %q: EventBridge wants 1 to %d characters", truncate(src), maxSource)
	}
	if dt := e.Type(); dt == "" || len(dt) > maxDetailType {
		return nil, fmt.Errorf("type %q cannot be a DetailType (1 to %d characters)", truncate(dt), maxDetailType)
	}
	detail, err := s.detail(e)
	if err != nil {
		return nil, err
	}
	t := e.Time()
	en := &types.PutEventsRequestEntry{Source: aws.String(src), DetailType: aws.String(e.Type()), Detail: aws.String(detail),
		EventBusName: aws.String(s.cfg.EventBus)}
	if !t.IsZero() {
		en.Time = &t
	}
	if s.resources != nil {
		if en.Resources, err = s.resourcesOf(e); err != nil {
			return nil, err
		}
	}
	return en, nil
}

// detail is the event's data as a JSON object, wrapping anything else as
// {"data": ...} (JSON or text) or {"data_base64": "..."} (binary data, as
// the CloudEvents JSON format writes it), or with detail: event the whole
// structured CloudEvent.
func (s *Sink) detail(e *event.Event) (string, error) {
	if s.cfg.Detail == "event" {
		b, err := ferry.MarshalStructured(e)
		return string(b), err
	}
	data := bytes.TrimSpace(e.Data())
	if !e.DataBase64 && len(data) > 0 && data[0] == '{' && json.Valid(data) && utf8.Valid(data) {
		return string(data), nil
	}
	var wrapped []byte
	switch {
	case e.DataBase64 || !utf8.Valid(e.Data()):
		wrapped = append([]byte(`{"data_base64":"`), base64.StdEncoding.EncodeToString(e.Data())...)
		wrapped = append(wrapped, `"}`...)
	case json.Valid(data) && utf8.Valid(data):
		wrapped = append(append([]byte(`{"data":`), data...), '}')
	default: // text: a JSON string
		v, _ := json.Marshal(string(e.Data()))
		wrapped = append(append([]byte(`{"data":`), v...), '}')
	}
	return string(wrapped), nil
}

func (s *Sink) resourcesOf(e *event.Event) ([]string, error) {
	var data any
	_ = json.Unmarshal(e.Data(), &data)
	out, _, err := s.resources.Eval(map[string]any{"id": e.ID(), "source": e.Source(), "type": e.Type(),
		"subject": e.Subject(), "extensions": e.Extensions(), "data": data})
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	v, err := out.ConvertToNative(reflect.TypeOf([]string{}))
	if err != nil {
		return nil, fmt.Errorf("resources must be a list of strings: %w", err)
	}
	return v.([]string), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
