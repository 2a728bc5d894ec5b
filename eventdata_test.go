package ferry_test

import (
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// TestMarkBinaryData: whatever the data, the structured JSON form is valid
// JSON and gives the same bytes back; binary data goes as data_base64.
func TestMarkBinaryData(t *testing.T) {
	cases := []struct {
		contentType string
		data        string
		base64      bool
	}{
		{"application/json", `{"a":1}`, false},
		{"application/json", `{"a":`, true},            // not JSON
		{"application/json", "{\"a\":\"\xff\"}", true}, // JSON syntax, not UTF-8
		{"application/vnd.x+json", `[1]`, false},
		{"text/plain", "héllo\x01", false},
		{"text/plain; charset=iso-8859-1", "caf\xe9", true},
		{"text/plain; charset=iso-8859-1", "plain ascii", true}, // not UTF-8 text by declaration
		{"application/xml", "<a>é</a>", false},
		{"application/octet-stream", "abc", true},
		{"application/octet-stream", "\x00\xff", true},
		{"image/png", "\x89PNG", true},
	}
	for _, c := range cases {
		e := event.New()
		e.SetID("1")
		e.SetSource("/s")
		e.SetType("t")
		e.SetDataContentType(c.contentType)
		e.DataEncoded = []byte(c.data)
		ferry.MarkBinaryData(&e)
		if e.DataBase64 != c.base64 {
			t.Errorf("%s %q: base64=%v, want %v", c.contentType, c.data, e.DataBase64, c.base64)
		}
		b, err := json.Marshal(&e)
		if err != nil || !json.Valid(b) {
			t.Errorf("%s %q: structured form %s is not valid JSON (%v)", c.contentType, c.data, b, err)
			continue
		}
		var back event.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("%s %q: %s does not parse back: %v", c.contentType, c.data, b, err)
			continue
		}
		if got := string(back.Data()); got != c.data {
			t.Errorf("%s %q: data back %q", c.contentType, c.data, got)
		}
	}
}
