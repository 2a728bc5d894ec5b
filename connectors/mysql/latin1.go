package mysql

import (
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"
)

// mysqlLatin1 is MySQL's latin1: Windows-1252, except that the five bytes
// cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) are the C1
// control characters of the same value, as the server's own CONVERT(...
// USING utf8mb4) gives them, rather than U+FFFD. Legacy tables hold such
// bytes (text written through another charset); they must not be lost.
type mysqlLatin1 struct{ encoding.Encoding }

var latin1Table = func() (t latin1Decoder) {
	for b := range 256 {
		r := charmap.Windows1252.DecodeByte(byte(b))
		if r == utf8.RuneError {
			r = rune(b)
		}
		t[b] = r
	}
	return t
}()

func (mysqlLatin1) NewDecoder() *encoding.Decoder {
	return &encoding.Decoder{Transformer: &latin1Table}
}

// latin1Decoder maps each byte to its rune: a stateless transformer.
type latin1Decoder [256]rune

func (t *latin1Decoder) Reset() {}

func (t *latin1Decoder) Transform(dst, src []byte, _ bool) (nDst, nSrc int, err error) {
	for nSrc < len(src) {
		r := t[src[nSrc]]
		if nDst+utf8.RuneLen(r) > len(dst) {
			return nDst, nSrc, transform.ErrShortDst
		}
		nDst += utf8.EncodeRune(dst[nDst:], r)
		nSrc++
	}
	return nDst, nSrc, nil
}
