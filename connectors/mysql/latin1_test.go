package mysql

import (
	"testing"
	"unicode/utf8"
)

func TestLatin1LikeMySQL(t *testing.T) {
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	out, err := mysqlLatin1{}.NewDecoder().Bytes(all)
	if err != nil || !utf8.Valid(out) {
		t.Fatalf("decode: %v, valid %v", err, utf8.Valid(out))
	}
	runes := []rune(string(out))
	if len(runes) != 256 {
		t.Fatalf("%d runes from 256 bytes", len(runes))
	}
	for b, want := range map[byte]rune{0x41: 'A', 0x80: '€', 0x81: 0x81, 0x8D: 0x8D, 0x8F: 0x8F, 0x90: 0x90, 0x9D: 0x9D, 0x9F: 'Ÿ', 0xE9: 'é', 0xFF: 'ÿ'} {
		if runes[b] != want {
			t.Errorf("byte %#x -> %U, want %U (as MySQL's CONVERT)", b, runes[b], want)
		}
	}
}
