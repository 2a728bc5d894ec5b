package ferry_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// randomEvent is an event as sources, rules and the webhook ingress make
// them: any content type (with parameters, odd case), data that is JSON
// or not, with or without whitespace and characters encoding/json would
// escape, extensions of each type the SDK allows, optional attributes.
func randomEvent(rng *rand.Rand, i int) event.Event {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	e := event.New()
	e.SetID(pick("1", "id-<&>", "ü\u2028", "quote\"back\\slash"))
	e.SetSource(pick("/mysql/shop", "https://example.com/a?b=<c>&d"))
	e.SetType(pick("com.example.orders.created", "t<&>"))
	if rng.IntN(2) == 0 {
		e.SetSubject(pick("orders/1", "<subject & more>"))
	}
	if rng.IntN(3) == 0 {
		e.SetDataSchema("https://schemas.example.com/orders.json")
	}
	e.SetTime(time.Unix(1_700_000_000+int64(i), int64(rng.IntN(1e9))).UTC())
	switch rng.IntN(3) {
	case 0:
		e.SetExtension("partitionkey", pick("shop.orders/1", "k<&>\u2028"))
	case 1:
		e.SetExtension("seq", rng.Int32())
		e.SetExtension("flag", rng.IntN(2) == 0)
	}
	ct := pick("", "application/json", "Application/JSON; charset=utf-8", "text/json", "application/cloudevents+json",
		"application/vnd.x+json", "text/plain", "application/octet-stream")
	if ct != "" {
		e.SetDataContentType(ct)
	}
	data := pick(`{"a":1,"b":"<&>"}`, "{ \"spaced\" : [ 1 , 2 ] }\n", `[1,`, "\"\xff\"", `"line\u2028sep"`, "plain text", "")
	if data != "" {
		e.DataEncoded = []byte(data)
	}
	switch rng.IntN(3) {
	case 0:
		ferry.MarkBinaryData(&e) // as the transform does
	case 1:
		e.DataBase64 = rng.IntN(2) == 0 // an event that skipped it
	}
	return e
}

// WriteStructured writes what json.Marshal's route (the SDK's MarshalJSON,
// then encoding/json's validating compaction) wrote, as JSON: the same
// value for every event it encodes, and an error for every event that
// route refused (data copied in as JSON that is not JSON).
func TestWriteStructuredMatchesJSONMarshal(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	refused := 0
	for i := range 5000 {
		e := randomEvent(rng, i)
		var old bytes.Buffer
		enc := json.NewEncoder(&old)
		enc.SetEscapeHTML(false)
		oldErr := enc.Encode(&e)

		buf := bytes.NewBufferString("[prefix,")
		err := ferry.WriteStructured(buf, &e)
		got := strings.TrimPrefix(buf.String(), "[prefix,")
		if (err != nil) != (oldErr != nil) {
			t.Fatalf("event %d (%s, base64 %v, data %q): error %v, json.Marshal's %v", i, e.DataContentType(), e.DataBase64, e.DataEncoded, err, oldErr)
		}
		if err != nil {
			if !errors.Is(err, ferry.ErrDataNotJSON) {
				t.Fatalf("event %d: error %v, want ErrDataNotJSON", i, err)
			}
			if got != "" {
				t.Fatalf("event %d: failed but wrote %q", i, got)
			}
			refused++
			continue
		}
		var want, have any
		if err := json.Unmarshal(old.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(got), &have); err != nil {
			t.Fatalf("event %d: not JSON: %v\n%s", i, err, got)
		}
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("event %d: wrote\n%s\njson.Marshal\n%s", i, got, old.Bytes())
		}
		// The SDK reads back what it read from json.Marshal's output (it
		// does not read JSON data under an upper-case media type either way).
		viaOld, viaNew := event.New(), event.New()
		if json.Unmarshal(old.Bytes(), &viaOld) == nil && (json.Unmarshal([]byte(got), &viaNew) != nil || viaNew.ID() != e.ID()) {
			t.Fatalf("event %d: the SDK does not read back what was written: %s", i, got)
		}
	}
	if refused == 0 {
		t.Fatal("no event had data the JSON format refuses: the error path was not tested")
	}
}
