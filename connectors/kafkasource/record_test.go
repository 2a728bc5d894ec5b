package kafkasource

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry/connectors/kafkawire"
)

// TestRecordHeaders: a record's headers become an http.Header with
// canonical names, a name given twice keeps both values in order, and the
// remembered names stay bounded whatever producers send.
func TestRecordHeaders(t *testing.T) {
	keys := headerKeys{}
	r := &kgo.Record{Headers: []kgo.RecordHeader{
		{Key: "x-origin", Value: []byte("as400")}, {Key: "ce_id", Value: []byte("1")},
		{Key: "X-Origin", Value: []byte("mainframe")}, {Key: "empty", Value: nil}}}
	h := keys.header(r.Headers, kafkawire.HeaderTexts(r))
	if got := h.Values("x-origin"); !slices.Equal(got, []string{"as400", "mainframe"}) {
		t.Errorf("x-origin = %q, want both values in order", got)
	}
	if h.Get("Ce_id") != "1" || len(h["Ce_id"]) != 1 {
		t.Errorf("ce_id = %q", h["Ce_id"])
	}
	if v, ok := h["Empty"]; !ok || len(v) != 1 || v[0] != "" {
		t.Errorf("empty header = %q, %v", v, ok)
	}
	// Appending to one name's values must not overwrite another's.
	h2 := keys.header(r.Headers, kafkawire.HeaderTexts(r))
	h2["X-Origin"] = append(h2["X-Origin"], "more")
	if h2.Get("Ce_id") != "1" {
		t.Errorf("appending to X-Origin changed Ce_id to %q", h2.Get("Ce_id"))
	}
	for i := range 2 * maxHeaderKeys {
		hs := []kgo.RecordHeader{{Key: fmt.Sprintf("h-%d", i), Value: []byte("v")}}
		if got := keys.header(hs, []string{"v"}); got.Get(fmt.Sprintf("H-%d", i)) != "v" {
			t.Fatalf("header %d lost: %v", i, got)
		}
	}
	if len(keys) > maxHeaderKeys {
		t.Errorf("%d names remembered, want at most %d", len(keys), maxHeaderKeys)
	}
}

// TestRecordID: the change id is topic/partition/offset.
func TestRecordID(t *testing.T) {
	if got := recordID(&kgo.Record{Topic: "erp.orders", Partition: 11, Offset: 1234567890123}); got != "erp.orders/11/1234567890123" {
		t.Errorf("recordID = %q", got)
	}
}
