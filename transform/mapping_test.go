package transform

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleChange() *ferry.Change {
	cols := []string{"id", "total", "note", "tags", "doc", "raw", "big", "ratio", "paid"}
	return &ferry.Change{
		ID:     "0-1-1043#2",
		Op:     ferry.OpUpdate,
		Source: "shop-db",
		DB:     "shop",
		Table:  "orders",
		Key:    ferry.Row{Columns: []string{"id"}, Values: []any{int64(42)}},
		Before: ferry.Row{Columns: cols, Values: []any{int64(42), "10.50", "caf\u00e9 \U0001F680", []string{"a", "c"},
			json.RawMessage(`{"k":[1,2]}`), []byte{0, 1, 2, 255}, uint64(math.MaxUint64), float32(0.1), false}},
		After: ferry.Row{Columns: cols, Values: []any{int64(42), "12.00", "line\n\"quoted\"\t<tag>", []string{},
			nil, []byte{}, uint64(7), float64(1e21), true}},
		Time: time.Date(2026, 11, 26, 19, 38, 8, 123_000_000, time.FixedZone("CET", 3600)),
		Binlog: ferry.BinlogCoords{File: "mysql-bin.000003", Pos: 1234, GTID: "0-1-1043", ServerID: 1,
			TxID: "0-1-1043", TxOrder: 2},
	}
}

func TestDefaultEventGolden(t *testing.T) {
	cases := map[string]func(c *ferry.Change){
		"update":       func(*ferry.Change) {},
		"insert_no_pk": func(c *ferry.Change) { c.Op, c.Key, c.Before = ferry.OpCreate, ferry.Row{}, ferry.Row{} },
		"delete_composite_key": func(c *ferry.Change) {
			c.Op, c.After = ferry.OpDelete, ferry.Row{}
			c.Key = ferry.Row{Columns: []string{"tenant", "id"}, Values: []any{"a/b%c", int64(7)}}
			c.Binlog.GTID, c.Binlog.TxID = "", "mysql-bin.000003:1200"
		},
	}
	w, err := New(Options{TypePrefix: "com.example", DefaultTo: []string{"console"}})
	if err != nil {
		t.Fatal(err)
	}
	worker := w.NewWorker()
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := sampleChange()
			mutate(c)
			out := worker.Apply(c, nil)
			if len(out) != 1 || out[0].Err != nil {
				t.Fatalf("Apply = %+v", out)
			}
			if err := out[0].Event.Validate(); err != nil {
				t.Fatalf("invalid CloudEvent: %v", err)
			}
			got, err := json.MarshalIndent(out[0].Event, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./transform -update to create it)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("event differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestDropWithoutDefaultSinks(t *testing.T) {
	e, _ := New(Options{TypePrefix: "x"})
	if out := e.NewWorker().Apply(sampleChange(), nil); len(out) != 0 {
		t.Fatalf("Apply = %v; want no outputs", out)
	}
}

func TestSubject(t *testing.T) {
	cases := []struct {
		vals []any
		want string
	}{
		{[]any{int64(-5)}, "-5"},
		{[]any{"a/b"}, "a/b"}, // single keys are verbatim
		{[]any{uint64(math.MaxUint64)}, "18446744073709551615"},
		{[]any{[]byte{0xff}}, "/w=="},
		{[]any{"a/b", "c%d"}, "a%2Fb/c%25d"},
		{[]any{int64(1), "x"}, "1/x"},
		{[]any{"100%"}, "100%25"},
		{[]any{"tab\tnul\x00 del\x7f c1\u0085 ok é 🚀"}, "tab%09nul%00 del%7F c1%C2%85 ok é 🚀"},
		{[]any{"bad \xff utf8"}, "bad %FF utf8"},
		{[]any{"a\nb", "c"}, "a%0Ab/c"},
	}
	for _, c := range cases {
		cols := make([]string, len(c.vals))
		if got := Subject(ferry.Row{Columns: cols, Values: c.vals}); got != c.want {
			t.Errorf("Subject(%v) = %q, want %q", c.vals, got, c.want)
		}
	}
}

// TestSubjectIsReversible: percent-decoding each value of a subject gives
// the key values back, for random values (seeded) full of the escaped
// characters.
func TestSubjectIsReversible(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	alphabet := []string{"a", "%", "/", "\x00", "\t", "\x7f", "\u0085", "é", "🚀", "\xff", " ", "\"", "%25"}
	for range 2000 {
		n := 1 + rng.IntN(3)
		vals := make([]any, n)
		for i := range vals {
			var b strings.Builder
			for range rng.IntN(6) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			vals[i] = b.String()
		}
		subject := Subject(ferry.Row{Columns: make([]string, n), Values: vals})
		if strings.ContainsFunc(subject, unicode.IsControl) {
			t.Fatalf("Subject(%q) = %q holds a control character", vals, subject)
		}
		parts := []string{subject}
		if n > 1 {
			parts = strings.Split(subject, "/")
		}
		for i, p := range parts {
			got, err := url.PathUnescape(p)
			if err != nil || got != vals[i] {
				t.Fatalf("Subject(%q) = %q: value %d decodes to %q (%v)", vals, subject, i, got, err)
			}
		}
	}
}

func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	values := []any{
		"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f", "emoji \U0001F600", "bad utf8 \xff\xfe",
		"\u2028\u2029", int64(0), int64(-1), int64(maxSafeInt), float64(3.25), float64(-0.000001),
		float64(123456789012345678), float32(3.4e38), true, []string{"x", "y\"z"},
	}
	for _, v := range values {
		want, _ := json.Marshal(v)
		got := appendValue(nil, v)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("appendValue(%#v) = %s: invalid JSON: %v", v, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
			t.Errorf("appendValue(%#v) = %s, encoding/json = %s", v, got, want)
		}
	}
}

func TestLargeIntegersAreStrings(t *testing.T) {
	cases := map[any]string{
		int64(maxSafeInt):      "9007199254740991",
		int64(maxSafeInt + 1):  `"9007199254740992"`,
		int64(-maxSafeInt - 1): `"-9007199254740992"`,
		uint64(math.MaxUint64): `"18446744073709551615"`,
		uint64(maxSafeInt):     "9007199254740991",
	}
	for v, want := range cases {
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%T %v) = %s, want %s", v, v, got, want)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\xff", "\u2028", "\"\\\n", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, got, err)
		}
		// encoding/json's rule: each byte of invalid UTF-8 becomes one
		// U+FFFD (bytes.ToValidUTF8 would merge a run into one).
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("round trip of %q = %q, want %q", s, back, want)
		}
	})
}

// BenchmarkDefaultMapping measures the per-row cost of building the default
// CloudEvent of a ten-column row change.
func BenchmarkDefaultMapping(b *testing.B) {
	e, _ := New(Options{TypePrefix: "com.example", DefaultTo: []string{"console"}})
	w := e.NewWorker()
	c := sampleChange()
	out := make([]Output, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		out = w.Apply(c, out[:0])
	}
}

// TestArenaEventsDoNotShareData: events carved from one block are
// independent: changing or appending to one event's data leaves its
// neighbours' alone, and a later event does not overwrite an earlier one.
func TestArenaEventsDoNotShareData(t *testing.T) {
	e, _ := New(Options{TypePrefix: "com.example", DefaultTo: []string{"s"}})
	w := e.NewWorker()
	c := sampleChange()
	var evs []*event.Event
	var want [][]byte
	var keys []string                // the partition keys share the data's block
	for i := range arenaEvents + 3 { // crosses a block boundary
		c.Key.Values[0] = int64(i)
		out := w.Apply(c, nil)
		evs = append(evs, out[0].Event)
		want = append(want, append([]byte(nil), out[0].Event.DataEncoded...))
		keys = append(keys, strings.Clone(out[0].Event.Extensions()[PartitionKeyExtension].(string)))
	}
	evs[0].DataEncoded = append(evs[0].DataEncoded, "garbage"...)
	evs[1].SetSubject("changed")
	for i, ev := range evs[1:] {
		if !bytes.Equal(ev.DataEncoded, want[i+1]) {
			t.Fatalf("event %d's data changed to %q", i+1, ev.DataEncoded)
		}
	}
	for i, ev := range evs {
		if got := ev.Extensions()[PartitionKeyExtension]; got != keys[i] || !strings.HasSuffix(keys[i], "/"+strconv.Itoa(i)) {
			t.Fatalf("event %d's partition key %q, want %q", i, got, keys[i])
		}
	}
	if evs[2].Subject() == "changed" || evs[0].Subject() == "changed" {
		t.Fatal("events share their context")
	}
}

// TestLargeEventsAreNotCarvedFromTheArena: an event with large data gets
// its own allocation, so a block of small events a sink holds for a retry
// does not keep megabytes of delivered data reachable, and the block's
// small events still share it.
func TestLargeEventsAreNotCarvedFromTheArena(t *testing.T) {
	e, _ := New(Options{TypePrefix: "com.example", DefaultTo: []string{"s"}})
	w := e.NewWorker()
	small := w.Apply(sampleChange(), nil)[0].Event
	c := sampleChange()
	c.After.Values[2] = strings.Repeat("x", arenaLarge)
	big := w.Apply(c, nil)[0].Event
	if len(big.DataEncoded) <= arenaLarge {
		t.Fatalf("data of %d bytes is not large", len(big.DataEncoded))
	}
	carved := func(ev *event.Event) bool {
		for i := range w.arena.events {
			if &w.arena.events[i].ev == ev {
				return true
			}
		}
		return false
	}
	if !carved(small) {
		t.Fatal("a small event was not carved from the arena")
	}
	if carved(big) {
		t.Fatal("an event with large data was carved from the arena")
	}
	if !bytes.Contains(big.DataEncoded, []byte(c.After.Values[2].(string))) {
		t.Fatal("the large event lost its data")
	}
}
