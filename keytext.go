package ferry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KeyText renders a key as text: the CloudEvent subject (and the end of the
// partitionkey) of the default mapping. A single-column key is its value as
// text; a composite key joins its values with "/" in key order. Inside each
// value, "%", control characters (C0, DEL, C1) and bytes that are not UTF-8
// are percent-encoded (%XX of each byte), and in a composite key "/" too,
// so attribute values never carry control characters, distinct keys always
// give distinct texts, and percent-decoding each value gives it back.
func KeyText(key Row) string {
	if len(key.Values) == 1 {
		return escapeKeyValue(ValueText(key.Values[0]), false)
	}
	var b strings.Builder
	for i, v := range key.Values {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(escapeKeyValue(ValueText(v), true))
	}
	return b.String()
}

// EscapeAttributeText applies KeyText's rule to a value taken from outside
// into a CloudEvent attribute (a webhook header mapped to an extension):
// "%", control characters and bytes that are not UTF-8 become %XX, so the
// attribute carries no control character and percent-decoding gives the
// value back.
func EscapeAttributeText(v string) string { return escapeKeyValue(v, false) }

// escapeKeyValue percent-encodes what KeyText escapes in one value.
func escapeKeyValue(t string, slash bool) string {
	clean := 0
	for clean < len(t) {
		r, size := utf8.DecodeRuneInString(t[clean:])
		if escapedInKey(r, size, slash) {
			break
		}
		clean += size
	}
	if clean == len(t) {
		return t
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(t[:clean])
	for i := clean; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		if !escapedInKey(r, size, slash) {
			b.WriteString(t[i : i+size])
		} else {
			for _, c := range []byte(t[i : i+size]) {
				b.WriteByte('%')
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			}
		}
		i += size
	}
	return b.String()
}

func escapedInKey(r rune, size int, slash bool) bool {
	return r == '%' || (slash && r == '/') || unicode.IsControl(r) || (r == utf8.RuneError && size == 1)
}

// ValueText renders one row value as text: numbers in decimal, binary as
// base64, SET labels joined with ",", JSON verbatim.
func ValueText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32)
	case bool:
		return strconv.FormatBool(v)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case json.RawMessage:
		return string(v)
	case []string:
		return strings.Join(v, ",")
	default:
		return fmt.Sprint(v)
	}
}
