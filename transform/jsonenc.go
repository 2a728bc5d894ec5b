package transform

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ferry-cdc/ferry"
)

// The encoder below writes event data by appending to a byte slice. It exists
// because the default mapping runs once per row change and encoding/json
// spends most of its time in reflection and in re-validating Marshaler output;
// a hand-written encoder for the few value types a Row may hold is several
// times faster (see BenchmarkDefaultMapping).

// maxSafeInt is the largest integer a float64 (a JavaScript number) holds
// exactly. Integers beyond ±maxSafeInt are written as JSON strings so no
// consumer silently rounds them.
const maxSafeInt = 1<<53 - 1

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; HTML characters are not escaped.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendInt(dst []byte, v int64) []byte {
	if v > maxSafeInt || v < -maxSafeInt {
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, v, 10)
		return append(dst, '"')
	}
	return strconv.AppendInt(dst, v, 10)
}

func appendUint(dst []byte, v uint64) []byte {
	if v > maxSafeInt {
		dst = append(dst, '"')
		dst = strconv.AppendUint(dst, v, 10)
		return append(dst, '"')
	}
	return strconv.AppendUint(dst, v, 10)
}

// appendFloat follows encoding/json's formatting (shortest representation
// that round-trips, exponent only for very large or small magnitudes).
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...) // MySQL cannot store these; never emit invalid JSON
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	return strconv.AppendFloat(dst, f, format, -1, bits)
}

// appendValue appends one Row value; see ferry.Row for the types it may hold.
func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return appendString(dst, v)
	case int64:
		return appendInt(dst, v)
	case uint64:
		return appendUint(dst, v)
	case float64:
		return appendFloat(dst, v, 64)
	case float32:
		return appendFloat(dst, float64(v), 32)
	case bool:
		return strconv.AppendBool(dst, v)
	case json.RawMessage:
		if len(v) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, v...)
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, '"')
	case []string:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		return append(dst, ']')
	default:
		// Not a type sources produce; encode it faithfully rather than fail.
		b, err := json.Marshal(v)
		if err != nil {
			return appendString(dst, err.Error())
		}
		return append(dst, b...)
	}
}

// appendRow appends a row as a JSON object in column order, or null.
func appendRow(dst []byte, r ferry.Row) []byte {
	if r.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '{')
	for i, c := range r.Columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, c)
		dst = append(dst, ':')
		dst = appendValue(dst, r.Values[i])
	}
	return append(dst, '}')
}
