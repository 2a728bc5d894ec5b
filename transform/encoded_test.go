package transform

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// The default mapping skips re-parsing the data it encoded itself; what it
// decides must be what ferry.MarkBinaryData decides from the bytes, for any
// row, including strings that are not UTF-8 and JSON columns holding bytes
// that are not.
func TestEncodedDataMarkedLikeMarkBinaryData(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	pieces := []string{"a", "é", "\U0001F680", "\"", "\\", "\n", "\x00", "\xff", "\xc3", "</tag>", "%"}
	text := func() string {
		s := ""
		for range rng.IntN(6) {
			s += pieces[rng.IntN(len(pieces))]
		}
		return s
	}
	value := func() any {
		switch rng.IntN(7) {
		case 0:
			return nil
		case 1:
			return text()
		case 2:
			return []byte(text())
		case 3:
			return json.RawMessage(`{"k":"` + text() + `"}`)
		case 4:
			return []string{text(), text()}
		case 5:
			return rng.Int64()
		default:
			return rng.Float64()
		}
	}
	m := NewDefaultMapping("ferry")
	var scratch []byte
	for i := range 2000 {
		cols := []string{"id", "a", "b", "c"}
		vals := []any{int64(i), value(), value(), value()}
		for j, v := range vals {
			if raw, ok := v.(json.RawMessage); ok && !json.Valid(raw) {
				vals[j] = string(raw) // the decoder embeds only JSON it checked
			}
		}
		c := &ferry.Change{ID: "x", Op: ferry.OpCreate, Source: "s", DB: text(), Table: "t",
			Key:   ferry.Row{Columns: cols[:1], Values: vals[:1]},
			After: ferry.Row{Columns: cols, Values: vals}, Time: time.Unix(0, 0)}
		ev, s := m.Event(c, scratch)
		scratch = s
		fast := ev.DataBase64
		ev.DataBase64 = false
		ferry.MarkBinaryData(ev)
		if ev.DataBase64 != fast {
			t.Fatalf("change %d (%q): default mapping says data_base64=%v, MarkBinaryData %v", i, ev.DataEncoded, fast, ev.DataBase64)
		}
	}
}
