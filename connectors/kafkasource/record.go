package kafkasource

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// change turns a record into a change: the CloudEvent it carries by the
// binding, else the request-like record the default mapping and rules read.
// A record claiming the binding that breaks it is an Invalid change, which
// the pipeline dead-letters with the reason.
func (s *Source) change(ctx context.Context, r *kgo.Record) ferry.Change {
	c := ferry.Change{
		ID:     recordID(r),
		Op:     ferry.OpRequest,
		Source: s.name,
		Time:   r.Timestamp.UTC(),
	}
	// The header values become text once: the request's headers and the
	// event's attributes share them.
	texts := kafkawire.HeaderTexts(r)
	req := &ferry.Request{
		Header: s.keys.header(r.Headers, texts),
		Data:   r.Value,
		Kafka:  &ferry.KafkaCoords{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key},
	}
	c.Request = req
	e, err := kafkawire.DecodeTexts(ctx, r, texts)
	switch {
	case err == nil:
		req.Event = e
		return c
	case !errors.Is(err, kafkawire.ErrNotCloudEvent):
		c.Invalid = fmt.Errorf("kafka record %s claims the CloudEvents binding but breaks it: %w", c.ID, err)
		return c
	}
	req.ContentType = contentType(req.Header.Get(kafkawire.HeaderContentType), r.Value)
	req.Extensions = map[string]string{}
	if len(r.Key) > 0 {
		req.Extensions["partitionkey"] = keyText(r.Key)
	}
	if tp := req.Header.Get(tracectx.Traceparent); tp != "" {
		req.Extensions[tracectx.Traceparent] = tp
		if ts := req.Header.Get(tracectx.Tracestate); ts != "" {
			req.Extensions[tracectx.Tracestate] = ts
		}
	}
	return c
}

// recordID is topic/partition/offset, in one allocation.
func recordID(r *kgo.Record) string {
	b := make([]byte, 0, 64)
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.Offset, 10)
	return string(b)
}

// headerKeys remembers the canonical form (net/http's) of the header
// names records carry, so the few names a topic uses are canonicalized
// once, not once per record. Only the Read goroutine uses it.
type headerKeys map[string]string

// maxHeaderKeys bounds the names remembered: a producer inventing names
// per record must not grow the map without end.
const maxHeaderKeys = 1024

// header builds a record's http.Header, the values being texts; the
// value slices share one allocation.
func (k headerKeys) header(hs []kgo.RecordHeader, texts []string) http.Header {
	h := make(http.Header, len(hs))
	vals := make([]string, len(hs))
	for i, rh := range hs {
		name, ok := k[rh.Key]
		if !ok {
			name = http.CanonicalHeaderKey(rh.Key)
			if len(k) < maxHeaderKeys {
				k[rh.Key] = name
			}
		}
		vals[i] = texts[i]
		if prev := h[name]; prev != nil {
			h[name] = append(prev, texts[i])
			continue
		}
		h[name] = vals[i : i+1 : i+1]
	}
	return h
}

// contentType is the record's content-type header, else application/json
// for a value that is JSON, else application/octet-stream.
func contentType(header string, value []byte) string {
	switch {
	case header != "":
		return header
	case len(value) > 0 && json.Valid(value):
		return "application/json"
	}
	return "application/octet-stream"
}

// keyText is the key as text: itself when UTF-8, else its hex digits.
func keyText(k []byte) string {
	if utf8.Valid(k) {
		return string(k)
	}
	return hex.EncodeToString(k)
}

// waitReady returns once the brokers answer and every named topic exists,
// logging a line per failed attempt, or when ctx ends.
func (s *Source) waitReady(ctx context.Context, cl *kgo.Client) error {
	delay := 500 * time.Millisecond
	for {
		err := s.check(ctx, cl)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kafka source %s: %w (last: %w)", s.name, ctx.Err(), err)
		}
		s.log.Warn("kafka source not ready; retrying", "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka source %s: %w (last: %w)", s.name, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// check asks the cluster for the named topics' metadata.
func (s *Source) check(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range s.cfg.Topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	if s.cfg.TopicRegex != "" {
		req.Topics = []kmsg.MetadataRequestTopic{} // none: brokers only
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("brokers %v unreachable: %w", s.cfg.Brokers, err)
	}
	var missing []string
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				missing = append(missing, name)
				continue
			}
			return fmt.Errorf("topic %s: %w", name, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (on brokers %v)", errUnknownTopic, strings.Join(missing, ", "), s.cfg.Brokers)
	}
	return nil
}
