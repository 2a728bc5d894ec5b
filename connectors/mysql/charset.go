package mysql

import (
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// binaryCollation is the collation id of the binary character set: columns
// with it hold bytes, not text.
const binaryCollation = 63

// charsetEncodings maps MySQL character set names to their encodings. UTF-8
// sets are absent on purpose: their bytes are used as they are.
var charsetEncodings = map[string]encoding.Encoding{
	"latin1":   mysqlLatin1{charmap.Windows1252}, // cp1252 with its 5 holes as C1 controls
	"latin2":   charmap.ISO8859_2,
	"latin5":   charmap.ISO8859_9,
	"latin7":   charmap.ISO8859_13,
	"cp1250":   charmap.Windows1250,
	"cp1251":   charmap.Windows1251,
	"cp1256":   charmap.Windows1256,
	"cp1257":   charmap.Windows1257,
	"cp850":    charmap.CodePage850,
	"cp852":    charmap.CodePage852,
	"cp866":    charmap.CodePage866,
	"koi8r":    charmap.KOI8R,
	"koi8u":    charmap.KOI8U,
	"greek":    charmap.ISO8859_7,
	"hebrew":   charmap.ISO8859_8,
	"macroman": charmap.Macintosh,
	"sjis":     japanese.ShiftJIS,
	"cp932":    japanese.ShiftJIS,
	"ujis":     japanese.EUCJP,
	"eucjpms":  japanese.EUCJP,
	"euckr":    korean.EUCKR,
	"gb2312":   simplifiedchinese.GBK,
	"gbk":      simplifiedchinese.GBK,
	"gb18030":  simplifiedchinese.GB18030,
	"big5":     traditionalchinese.Big5,
	"ucs2":     unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16":    unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16le":  unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM),
	"utf32":    utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM),
}

// charsets maps collation ids to character set names, read from the
// server's information_schema.COLLATIONS at connect time.
type charsets map[uint64]string

// decoder returns the UTF-8 decoder for a collation and whether the column
// holds binary data. A nil decoder means the bytes are already UTF-8 (or an
// unknown set, whose invalid bytes become U+FFFD in JSON).
func (c charsets) decoder(collation uint64) (dec *encoding.Decoder, binary bool) {
	if collation == binaryCollation {
		return nil, true
	}
	name := strings.ToLower(c[collation])
	if name == "binary" {
		return nil, true
	}
	if enc, ok := charsetEncodings[name]; ok {
		return enc.NewDecoder(), false
	}
	return nil, false
}
