package mysql

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// sameRawValue compares two rawValues exactly: floats by their bits (so NaN
// payloads and -0.0 count), bytes by content.
func sameRawValue(a, b rawValue) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case 'i':
		return a.i == b.i
	case 'u':
		return a.u == b.u
	case 'f':
		return math.Float64bits(a.f) == math.Float64bits(b.f)
	}
	return bytes.Equal(a.s, b.s)
}

func TestRawValueJSONRoundTrip(t *testing.T) {
	nanBits := uint64(0x7ff8000000000001) // a quiet NaN with a payload
	cases := []struct {
		name string
		v    rawValue
		json string // exact encoding
	}{
		{"int zero", rawValue{kind: 'i'}, `"i:0"`},
		{"int negative", rawValue{kind: 'i', i: -5}, `"i:-5"`},
		{"int min", rawValue{kind: 'i', i: math.MinInt64}, `"i:-9223372036854775808"`},
		{"int max", rawValue{kind: 'i', i: math.MaxInt64}, `"i:9223372036854775807"`},
		{"uint max", rawValue{kind: 'u', u: math.MaxUint64}, `"u:18446744073709551615"`},
		{"uint zero", rawValue{kind: 'u'}, `"u:0"`},
		{"float one", rawValue{kind: 'f', f: 1}, `"f:3ff0000000000000"`},
		{"float 0.1", rawValue{kind: 'f', f: 0.1}, `"f:3fb999999999999a"`},
		{"float zero", rawValue{kind: 'f', f: 0}, `"f:0"`},
		{"float negative zero", rawValue{kind: 'f', f: math.Copysign(0, -1)}, `"f:8000000000000000"`},
		{"float NaN payload", rawValue{kind: 'f', f: math.Float64frombits(nanBits)}, `"f:7ff8000000000001"`},
		{"float -inf", rawValue{kind: 'f', f: math.Inf(-1)}, `"f:fff0000000000000"`},
		{"bytes empty", rawValue{kind: 's', s: []byte{}}, `"s:"`},
		{"bytes text", rawValue{kind: 's', s: []byte("héllo")}, `"s:aMOpbGxv"`},
		{"bytes non-UTF-8", rawValue{kind: 's', s: []byte{0xff, 0x00, 0xfe, 0x80}}, `"s:/wD+gA=="`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.json {
				t.Fatalf("Marshal = %s, want %s", b, c.json)
			}
			var got rawValue
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if !sameRawValue(got, c.v) {
				t.Fatalf("round trip of %+v gave %+v", c.v, got)
			}
		})
	}
}

func TestRawValueRoundTripKeepsFloatSpecials(t *testing.T) {
	for _, f := range []float64{math.Copysign(0, -1), math.NaN(), 0.1, math.SmallestNonzeroFloat64, math.MaxFloat64} {
		b, err := json.Marshal(rawValue{kind: 'f', f: f})
		if err != nil {
			t.Fatal(err)
		}
		var got rawValue
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if math.Float64bits(got.f) != math.Float64bits(f) {
			t.Fatalf("%v (bits %x) came back as bits %x", f, math.Float64bits(f), math.Float64bits(got.f))
		}
	}
	var negZero rawValue
	if err := json.Unmarshal([]byte(`"f:8000000000000000"`), &negZero); err != nil {
		t.Fatal(err)
	}
	if negZero.f != 0 || !math.Signbit(negZero.f) {
		t.Fatalf("-0.0 decoded as %v (signbit %v)", negZero.f, math.Signbit(negZero.f))
	}
	var nan rawValue
	if err := json.Unmarshal([]byte(`"f:7ff8000000000001"`), &nan); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(nan.f) {
		t.Fatalf("NaN bits decoded as %v", nan.f)
	}
}

func TestRawValueEmptyBytesDecodeNonNil(t *testing.T) {
	var v rawValue
	if err := json.Unmarshal([]byte(`"s:"`), &v); err != nil {
		t.Fatal(err)
	}
	if v.kind != 's' || v.s == nil || len(v.s) != 0 {
		t.Fatalf(`"s:" decoded as %+v, want kind s and empty bytes`, v)
	}
	// As an argument an empty key value is empty bytes, not NULL.
	if a, ok := v.arg().([]byte); !ok || a == nil || len(a) != 0 {
		t.Fatalf("arg() = %#v, want []byte{}", v.arg())
	}
}

func TestRawKeyJSONRoundTrip(t *testing.T) {
	key := rawKey{
		{kind: 'i', i: math.MinInt64},
		{kind: 'u', u: math.MaxUint64},
		{kind: 'f', f: 0.1},
		{kind: 's', s: []byte{0, 0xff, 'a'}},
	}
	b, err := json.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	want := `["i:-9223372036854775808","u:18446744073709551615","f:3fb999999999999a","s:AP9h"]`
	if string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var got rawKey
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(key) {
		t.Fatalf("got %d values, want %d", len(got), len(key))
	}
	for i := range key {
		if !sameRawValue(got[i], key[i]) {
			t.Fatalf("value %d: got %+v, want %+v", i, got[i], key[i])
		}
	}
}

func TestRawValueArg(t *testing.T) {
	cases := []struct {
		v    rawValue
		want any
	}{
		{rawValue{kind: 'i', i: -7}, int64(-7)},
		{rawValue{kind: 'u', u: math.MaxUint64}, uint64(math.MaxUint64)},
		{rawValue{kind: 'f', f: 2.5}, float64(2.5)},
	}
	for _, c := range cases {
		if got := c.v.arg(); got != c.want {
			t.Errorf("%+v.arg() = %#v, want %#v", c.v, got, c.want)
		}
	}
	if got, ok := (rawValue{kind: 's', s: []byte("k")}).arg().([]byte); !ok || string(got) != "k" {
		t.Errorf("bytes arg() = %#v, want []byte(\"k\")", got)
	}
}

func TestRawValueUnmarshalRejectsInvalid(t *testing.T) {
	cases := []struct {
		name, in, msg string // msg: a substring the error must contain
	}{
		{"too short", `"x"`, "invalid key value"},
		{"empty", `""`, "invalid key value"},
		{"no colon", `"i5"`, "invalid key value"},
		{"unknown kind", `"z:1"`, "unknown kind"},
		{"bad int", `"i:abc"`, "invalid key value"},
		{"empty int", `"i:"`, "invalid key value"},
		{"int overflow", `"i:9223372036854775808"`, "invalid key value"},
		{"negative uint", `"u:-1"`, "invalid key value"},
		{"uint overflow", `"u:18446744073709551616"`, "invalid key value"},
		{"bad float bits", `"f:xyz"`, "invalid key value"},
		{"bad base64", `"s:!!"`, "invalid key value"},
		{"not a string", `5`, ""},
		{"null", `null`, "invalid key value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v rawValue
			err := json.Unmarshal([]byte(c.in), &v)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = %+v, want an error", c.in, v)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Unmarshal(%s) error %q does not mention %q", c.in, err, c.msg)
			}
		})
	}
}
