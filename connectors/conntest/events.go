package conntest

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// eventTime is the time attribute of every event Events builds.
var eventTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Events builds n valid CloudEvents spread round-robin over `keys`
// partition keys (at least one). Event i has:
//
//	specversion      1.0
//	id               conntest-<i>
//	source           /ferry/conntest/db/t
//	type             com.example.db.t.created
//	subject          <i mod keys>
//	time             2026-01-02T03:04:05Z
//	datacontenttype  application/json
//	partitionkey     db.t/<i mod keys>
//	data             {"key":"<i mod keys>","n":<i>,"text":"héllo 🚀"}
//
// Use EventIndex to get i back from a received event.
func Events(n, keys int) []*event.Event {
	keys = max(keys, 1)
	out := make([]*event.Event, n)
	for i := range out {
		key := strconv.Itoa(i % keys)
		e := event.New(event.CloudEventsVersionV1)
		e.SetID(idPrefix + strconv.Itoa(i))
		e.SetSource("/ferry/conntest/db/t")
		e.SetType("com.example.db.t.created")
		e.SetSubject(key)
		e.SetTime(eventTime)
		e.SetExtension("partitionkey", "db.t/"+key)
		// The data is written by hand so its bytes are known exactly: a
		// sink must deliver them unchanged. (A json.RawMessage, unlike a
		// []byte, is not marked for base64 in structured mode.)
		data := json.RawMessage(`{"key":"` + key + `","n":` + strconv.Itoa(i) + `,"text":"héllo 🚀"}`)
		_ = e.SetData(event.ApplicationJSON, data) // valid JSON always encodes
		out[i] = &e
	}
	return out
}

const idPrefix = "conntest-"

// EventIndex returns the index Events gave the event with this id, or -1.
func EventIndex(id string) int {
	if len(id) <= len(idPrefix) || id[:len(idPrefix)] != idPrefix {
		return -1
	}
	i, err := strconv.Atoi(id[len(idPrefix):])
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// PartitionKey returns the partitionkey extension of e, or "".
func PartitionKey(e *event.Event) string {
	v, _ := e.Extensions()["partitionkey"].(string)
	return v
}

// AwkwardValues are keys a sink must carry exactly: spaces, "%", quotes,
// a percent-escape look-alike, emoji, tabs, NUL and other control
// characters, C1 controls.
var AwkwardValues = []string{"with space", `"quoted"`, "100%", "%41 is not A", "émoji 🚀", "tab\there",
	"nul\x00bell\x07", "del\x7f", "c1\u0085", "a/b"}

// AwkwardEvents builds one event per AwkwardValues entry, with that value
// as subject and partitionkey (set as they are: the SDK's setters trim
// white space), and data alternating between JSON, binary bytes
// (application/octet-stream) and ISO-8859-1 text, marked for data_base64 as
// the transform marks them (ferry.MarkBinaryData).
func AwkwardEvents() []*event.Event {
	out := Events(len(AwkwardValues), len(AwkwardValues))
	for i, v := range AwkwardValues {
		e := out[i]
		e.Context.(*event.EventContextV1).Subject = &v
		e.SetExtension("partitionkey", v)
		switch i % 3 {
		case 1:
			e.SetDataContentType("application/octet-stream")
			e.DataEncoded = []byte{0x00, 0xff, byte(i), 0xc3, 0x28, '"', '\n'}
		case 2:
			e.SetDataContentType("text/plain; charset=iso-8859-1")
			e.DataEncoded = []byte("caf\xe9 " + strconv.Itoa(i))
		}
		ferry.MarkBinaryData(e)
	}
	return out
}
