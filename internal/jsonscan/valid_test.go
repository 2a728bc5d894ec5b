package jsonscan

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

var cases = []string{
	``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.5e-10`, `123abc`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, ` null `, "\tnull\r\n", `null null`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u00e"`, `"\x"`,
	"\"\x01\"", "\"\x7f\"", "\"\xff\xfe\"", "\"é\"", `"unterminated`, `"\`, `"\u`,
	`{}`, `{ }`, `[]`, `[ ]`, `{"a":1}`, `{"a" : 1 , "b" : [true,false,null]}`, `{"a":1,}`, `{,}`, `{"a"}`,
	`{"a":}`, `{1:2}`, `{"a":1 "b":2}`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[[[]]`, `[]]`, `{"a":{"b":{}}}`,
	`{"a":[{"b":[1,{"c":null}]}]}`, `[1,[2,[3,[4]]]]`, `{}}`, `[}`, `{]`, `["a",{"b":"c"},[]]`,
}

// Valid accepts what encoding/json.Valid accepts, and nothing else.
func TestValidMatchesEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

// Nesting up to encoding/json's limit is valid, one more level is not.
func TestValidNestingLimit(t *testing.T) {
	for _, open := range []string{"[", `{"k":`} {
		closer := map[string]string{"[": "]", `{"k":`: "}"}[open]
		for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
			doc := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closer, depth))
			if got, want := Valid(doc), json.Valid(doc); got != want {
				t.Errorf("%d levels of %s: Valid %v, encoding/json %v", depth, open, got, want)
			}
		}
	}
}

// Random documents, and random mutations of them (a byte changed,
// dropped or duplicated), get encoding/json's verdict.
func TestValidRandomDocuments(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	alphabet := []byte("{}[]:,\"\\/ \t\n\r0123456789-+.eEtrufalsn\x00\x1f\xc3\xa9\xffxu")
	for range 20000 {
		doc := []byte(randomValue(rng, 0))
		for range rng.IntN(3) {
			if len(doc) == 0 {
				break
			}
			k := rng.IntN(len(doc))
			switch rng.IntN(3) {
			case 0:
				doc[k] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				doc = append(doc[:k], doc[k+1:]...)
			default:
				doc = append(doc[:k+1], doc[k:]...)
			}
		}
		if got, want := Valid(doc), json.Valid(doc); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", doc, got, want)
		}
	}
}

func randomValue(rng *rand.Rand, depth int) string {
	n := 7
	if depth > 4 {
		n = 5
	}
	switch rng.IntN(n) {
	case 0:
		return []string{"true", "false", "null"}[rng.IntN(3)]
	case 1:
		return []string{"0", "-12", "3.25", "1e9", "-0.5E-3", "42"}[rng.IntN(6)]
	case 2, 3, 4:
		return []string{`""`, `"abc"`, `"é\n"`, `"\u00e9\"\\"`, "\"\xff\""}[rng.IntN(5)]
	case 5:
		var parts []string
		for range rng.IntN(4) {
			parts = append(parts, randomValue(rng, depth+1))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		var parts []string
		for i := range rng.IntN(4) {
			parts = append(parts, `"k`+string(rune('a'+i))+`" : `+randomValue(rng, depth+1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

// FuzzValid: on any input Valid and encoding/json.Valid agree.
func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

var sample = []byte(`{"id":12345,"customer":"customer-12345","qty":42,"note":"some text \u00e9 here","created":"2026-12-03T15:00:00.123456Z","price":"19.99","tags":[1,2.5,-3e2,true,null]}`)

func BenchmarkValid(b *testing.B) {
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		if !Valid(sample) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkEncodingJSONValid(b *testing.B) {
	b.SetBytes(int64(len(sample)))
	for b.Loop() {
		if !json.Valid(sample) {
			b.Fatal("invalid")
		}
	}
}
