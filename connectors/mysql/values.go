package mysql

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
)

// decodeFunc turns one raw go-mysql value into the value type the contract
// wants (see ferry.Row). Raw values are never nil here: NULL is handled by
// the caller.
type decodeFunc func(raw any) any

// The integer decoders apply the column's signedness from the table map:
// go-mysql always returns signed Go integers, so BIGINT UNSIGNED max comes out
// as -1 and TINYINT UNSIGNED 255 as -1.
func signedInt(raw any) any {
	switch v := raw.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	return unexpected(raw)
}

func unsignedInt(bits uint) decodeFunc {
	mask := uint64(1)<<bits - 1
	if bits == 64 {
		mask = ^uint64(0)
	}
	return func(raw any) any {
		var v int64
		switch r := raw.(type) {
		case int8:
			v = int64(r)
		case int16:
			v = int64(r)
		case int32:
			v = int64(r)
		case int64:
			v = r
		default:
			return unexpected(raw)
		}
		return uint64(v) & mask
	}
}

// bitValue: BIT(n) is an unsigned integer of n bits (documented choice:
// a JSON number, or a string beyond 2^53 like every large integer).
func bitValue(raw any) any {
	if v, ok := raw.(int64); ok {
		return uint64(v)
	}
	return unexpected(raw)
}

func passThrough(raw any) any { return raw }

// decimalValue keeps DECIMAL exact: go-mysql renders it as a string of digits.
func decimalValue(raw any) any {
	if s, ok := raw.(string); ok {
		return s
	}
	return fmt.Sprint(raw)
}

// yearValue: YEAR 0000 (the zero value MySQL stores for invalid input) is
// null, like zero dates.
func yearValue(raw any) any {
	if y, ok := raw.(int); ok {
		if y == 0 {
			return nil
		}
		return int64(y)
	}
	return unexpected(raw)
}

// isZeroDate reports whether a "YYYY-MM-DD..." string has a zero month or
// day: MySQL's legacy zero dates ('0000-00-00', '2024-00-15') are not
// calendar dates and are emitted as null.
func isZeroDate(s string) bool {
	return len(s) >= 10 && (s[5:7] == "00" || s[8:10] == "00")
}

// dateValue: DATE as YYYY-MM-DD.
func dateValue(raw any) any {
	s, ok := raw.(string)
	if !ok {
		return unexpected(raw)
	}
	if isZeroDate(s) {
		return nil
	}
	return s
}

// datetimeValue renders DATETIME as ISO-8601 local date-time (no zone: a
// DATETIME has none) with exactly the column's fractional digits.
func datetimeValue(fsp int) decodeFunc {
	return func(raw any) any {
		s, ok := raw.(string)
		if !ok {
			return unexpected(raw)
		}
		if isZeroDate(s) {
			return nil
		}
		return isoDateTime(s, fsp, "")
	}
}

// timestampValue renders TIMESTAMP in UTC with Z. go-mysql's parser is
// configured to format TIMESTAMP in UTC (its default is the process's zone).
func timestampValue(fsp int) decodeFunc {
	return func(raw any) any {
		s, ok := raw.(string)
		if !ok {
			return unexpected(raw)
		}
		if strings.HasPrefix(s, "0000-00-00") {
			return nil
		}
		return isoDateTime(s, fsp, "Z")
	}
}

func isoDateTime(s string, fsp int, zone string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		b.WriteString(s[:i])
		b.WriteByte('T')
		b.WriteString(s[i+1:])
	} else {
		b.WriteString(s)
	}
	padFraction(&b, s, fsp)
	b.WriteString(zone)
	return b.String()
}

// padFraction completes a time's fraction to fsp digits; go-mysql drops an
// all-zero fraction of TIME and some DATETIME paths.
func padFraction(b *strings.Builder, s string, fsp int) {
	if fsp == 0 {
		return
	}
	have := 0
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		have = len(s) - i - 1
	} else {
		b.WriteByte('.')
	}
	for ; have < fsp; have++ {
		b.WriteByte('0')
	}
}

// timeValue renders TIME as [-]HH:MM:SS[.fraction] (hours may exceed 24: a
// TIME is a duration, range ±838:59:59) with exactly fsp fractional digits.
func timeValue(fsp int) decodeFunc {
	return func(raw any) any {
		s, ok := raw.(string)
		if !ok {
			return unexpected(raw)
		}
		var b strings.Builder
		b.WriteString(s)
		padFraction(&b, s, fsp)
		return b.String()
	}
}

// enumValue maps ENUM indexes to labels. Index 0 is the empty string MySQL
// stores for an invalid value.
func enumValue(labels []string) decodeFunc {
	return func(raw any) any {
		i, ok := raw.(int64)
		if !ok {
			return unexpected(raw)
		}
		if i == 0 {
			return ""
		}
		if int(i) <= len(labels) {
			return labels[i-1]
		}
		return fmt.Sprint(i) // metadata lacks the label; keep the index visible
	}
}

// setValue maps a SET bitmask to its labels in definition order.
func setValue(labels []string) decodeFunc {
	return func(raw any) any {
		mask, ok := raw.(int64)
		if !ok {
			return unexpected(raw)
		}
		out := make([]string, 0, 4)
		for i, l := range labels {
			if mask&(1<<uint(i)) != 0 {
				out = append(out, l)
			}
		}
		return out
	}
}

func toBytes(raw any) ([]byte, bool) {
	switch v := raw.(type) {
	case []byte:
		return v, true
	case string:
		return []byte(v), true
	}
	return nil, false
}

// binaryValue: BLOB and VARBINARY as bytes (base64 in JSON).
func binaryValue(raw any) any {
	if b, ok := toBytes(raw); ok {
		return b
	}
	return unexpected(raw)
}

// fixedBinaryValue: BINARY(n) pads back the trailing zero bytes the binlog
// drops, so X'01000000' stays four bytes.
func fixedBinaryValue(n int) decodeFunc {
	return func(raw any) any {
		b, ok := toBytes(raw)
		if !ok {
			return unexpected(raw)
		}
		if len(b) < n {
			p := make([]byte, n)
			copy(p, b)
			b = p
		}
		return b
	}
}

// textValue decodes a character column in the given character set to UTF-8.
// A nil decoder means the bytes already are UTF-8.
func textValue(dec *encoding.Decoder) decodeFunc {
	return func(raw any) any {
		var s string
		switch v := raw.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		default:
			return unexpected(raw)
		}
		if dec == nil || isASCII(s) {
			return s
		}
		out, err := dec.String(s)
		if err != nil {
			return strings.ToValidUTF8(s, "\uFFFD")
		}
		return out
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// jsonValue embeds a JSON column's document. A value that is not valid JSON
// (MariaDB JSON without its CHECK, or legacy data) stays a string so the
// event is always valid JSON.
func jsonValue(raw any) any {
	var b []byte
	switch v := raw.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return unexpected(raw)
	}
	if len(b) == 0 {
		return nil
	}
	if !json.Valid(b) {
		return string(b)
	}
	return json.RawMessage(b)
}

// unexpected keeps a value of a type this decoder did not plan for visible
// instead of failing the whole transaction.
func unexpected(raw any) any { return fmt.Sprint(raw) }
