package mysql

import (
	"strings"
	"testing"
)

// FuzzParsePosition: whatever a user types as a position (`start:`,
// `ferry checkpoint set`, `ferry replay --from/--until`) either fails with
// an error or yields a position that survives storage and display: parsing
// its displayed form gives it back, and positions order consistently.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"mysql-bin.000003:4", "mariadb-bin.000001:4294967295", "0-1-100", "0-1-100, 1-2-7",
		"3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,3e11fa47-71ca-11e1-9e33-c80aa9429563:1",
		"f:3", "a:b:4", " mysql-bin.000010:120 ", "0-1-18446744073709551616",
	} {
		f.Add(s, "mysql-bin.000002:120")
	}
	codec := Codec{}
	f.Fuzz(func(t *testing.T, text, other string) {
		stored, err := codec.ParsePosition(text)
		if err != nil {
			return
		}
		shown, err := codec.FormatPosition(stored)
		if err != nil {
			t.Fatalf("FormatPosition of parsed %q: %v", text, err)
		}
		again, err := codec.ParsePosition(shown)
		if err != nil {
			t.Fatalf("the displayed form %q of %q does not parse: %v", shown, text, err)
		}
		if string(again) != string(stored) {
			t.Fatalf("%q: stored %s, displayed %q, parsed back %s", text, stored, shown, again)
		}
		a, _ := decodePosition(stored)
		b, err := parsePositionText(other)
		if err != nil || a.File == "" || b.File == "" {
			return
		}
		if comparePositions(a, b) != -comparePositions(b, a) || comparePositions(a, a) != 0 {
			t.Fatalf("comparePositions(%v, %v) is not antisymmetric", a, b)
		}
	})
}

// FuzzFormatPosition: a stored position is read back from the state store
// (or a shared checkpoint table); damaged bytes give an error, never a panic.
func FuzzFormatPosition(f *testing.F) {
	f.Add([]byte(`{"file":"mysql-bin.000003","pos":4,"gtid":"0-1-100"}`))
	f.Add([]byte(`{"gtid":"0-1-1"}`))
	f.Add([]byte(`{"file":"","pos":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := (Codec{}).FormatPosition(b); err == nil && s == "" {
			t.Fatalf("FormatPosition(%q) = empty text without an error", b)
		}
	})
}

func TestParsePositionRejectsUnprintableFileNames(t *testing.T) {
	for _, s := range []string{"\x89:10", "mysql-bin\x00.000001:4", "bin\x1b.1:4"} {
		_, err := parsePositionText(s)
		if err == nil || !strings.Contains(err.Error(), "invalid binlog file name") {
			t.Errorf("parsePositionText(%q) = %v, want an invalid file name error", s, err)
		}
	}
}
