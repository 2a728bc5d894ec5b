package kafka

import (
	"net/url"
	"time"
)

// sharedValues keeps the header values many records carry alike: a
// stream's events share a handful of types, sources and content types,
// and the events of one transaction its commit time. A record's header
// points to the kept bytes instead of a copy in its Write's arena, which
// saves copying and formatting them per record and keeps the arena
// smaller (issue 18). Nothing writes into a header's value (franz-go and
// sarama only read them), and kept bytes are never rewritten: a record
// may outlive the Write that built it (an abandoned Write's records).
// Used by Write's goroutine only.
type sharedValues struct {
	types, sources, contentTypes textCache
	time                         time.Time
	timeValue                    []byte
	lastSource                   struct { // see Sink.source
		url   url.URL
		value []byte
	}
}

// textCache holds the last few distinct texts of one attribute and their
// bytes. A linear scan of a few strings costs less than a map's hash of
// the text, and a stream with more distinct values than it holds in
// rotation pays one small allocation per record, what a copy cost before
// the per-Write arena.
type textCache struct {
	texts  [4]string
	values [4][]byte
	next   int
}

func (c *textCache) bytes(s string) []byte {
	if s == "" {
		return nil
	}
	for i := range c.texts {
		if c.values[i] != nil && c.texts[i] == s {
			return c.values[i]
		}
	}
	i := c.next
	c.next = (c.next + 1) % len(c.texts)
	b := []byte(s)
	c.texts[i], c.values[i] = s, b[:len(b):len(b)]
	return c.values[i]
}

// timeText is t as the binding's time header (RFC 3339, UTC), formatted
// once for a run of events of the same instant.
func (v *sharedValues) timeText(t time.Time) []byte {
	if v.timeValue == nil || !t.Equal(v.time) {
		b := t.UTC().AppendFormat(make([]byte, 0, len(time.RFC3339Nano)), time.RFC3339Nano)
		v.time, v.timeValue = t, b[:len(b):len(b)]
	}
	return v.timeValue
}
