package kafkawire

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func hdrs(kv ...string) []kgo.RecordHeader {
	var hs []kgo.RecordHeader
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// TestHeaderTexts: every value comes back in order, empty ones included.
func TestHeaderTexts(t *testing.T) {
	r := &kgo.Record{Headers: hdrs("a", "one", "b", "", "c", "three", "a", "four")}
	got := HeaderTexts(r)
	want := []string{"one", "", "three", "four"}
	if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
		t.Fatalf("HeaderTexts = %q, want %q", got, want)
	}
}

// TestDecodeBinary: attributes and extensions come from ce_ headers,
// whatever their case; of a header given twice the last counts; the header
// text is kept exactly (the SDK's setters trim it); data is the value.
func TestDecodeBinary(t *testing.T) {
	r := &kgo.Record{Value: []byte(`{"a":1}`), Headers: hdrs(
		"CE_SpecVersion", "1.0", "ce_id", "first", "ce_id", " id-2 ", "ce_source", "/erp",
		"ce_type", "com.example.t", "ce_subject", "sub ", "ce_tenant", " acme", "Content-Type", "application/json")}
	e, err := Decode(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != " id-2 " || e.Source() != "/erp" || e.Type() != "com.example.t" || e.Subject() != "sub " ||
		e.Extensions()["tenant"] != " acme" || e.DataContentType() != "application/json" || string(e.Data()) != `{"a":1}` {
		t.Fatalf("decoded %v", e)
	}
	// The texts given are the ones used.
	texts := HeaderTexts(r)
	e2, err := DecodeTexts(context.Background(), r, texts)
	if err != nil || e2.ID() != e.ID() || e2.Extensions()["tenant"] != " acme" {
		t.Fatalf("DecodeTexts = %v, %v", e2, err)
	}
}

// TestDecodeStructured: a cloudevents+json value becomes its event; a
// malformed one, trailing bytes included, is an error, never an event.
func TestDecodeStructured(t *testing.T) {
	ok := `{"specversion":"1.0","id":"s-1","source":"/erp","type":"t","data":{"a":1}}`
	ct := hdrs("content-type", "application/cloudevents+json; charset=utf-8")
	e, err := Decode(context.Background(), &kgo.Record{Value: []byte(ok), Headers: ct})
	if err != nil || e.ID() != "s-1" || string(e.Data()) != `{"a":1}` {
		t.Fatalf("Decode = %v, %v", e, err)
	}
	for _, bad := range []string{`{not json`, ok + `}`, ok + ` {"x":1}`, `{"specversion":"1.0","id":"s-1"}`, ``} {
		if e, err := Decode(context.Background(), &kgo.Record{Value: []byte(bad), Headers: ct}); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", bad, e)
		}
	}
}

// TestDecodeRefusals: records that do not claim the binding are
// ErrNotCloudEvent; records that claim it and break it say why.
func TestDecodeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		hs   []kgo.RecordHeader
		want string // "" for ErrNotCloudEvent
	}{
		{"plain", hdrs("content-type", "application/json"), ""},
		{"no headers", nil, ""},
		{"unknown specversion", hdrs("ce_specversion", "0.1"), `unsupported ce_specversion "0.1"`},
		{"empty specversion", hdrs("ce_specversion", ""), `unsupported ce_specversion ""`},
		{"unknown format", hdrs("content-type", "application/cloudevents+xml"), "no CloudEvents event format"},
		{"missing attributes", hdrs("ce_specversion", "1.0", "ce_id", "x"), "invalid CloudEvent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(context.Background(), &kgo.Record{Value: []byte(`{}`), Headers: tc.hs})
			switch {
			case tc.want == "" && err != ErrNotCloudEvent:
				t.Fatalf("err = %v, want ErrNotCloudEvent", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestClaims: the header names and the content type are compared without
// regard to ASCII case, and only so.
func TestClaims(t *testing.T) {
	for _, tc := range []struct {
		hs   []kgo.RecordHeader
		want bool
	}{
		{hdrs("CE_SPECVERSION", "1.0"), true},
		{hdrs("Content-Type", "Application/CloudEvents+JSON"), true},
		{hdrs("content-type", "application/cloudevents-batch+json"), true},
		{hdrs("content-type", "application/json"), false},
		{hdrs("content-type", "application/cloud"), false},
		{hdrs("ce_\u017fpecversion", "1.0"), false}, // ſ is not s
		{hdrs("ce_specversionx", "1.0"), false},
	} {
		if got := Claims(&kgo.Record{Headers: tc.hs}); got != tc.want {
			t.Errorf("Claims(%q) = %v, want %v", tc.hs, got, tc.want)
		}
	}
}
