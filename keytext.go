package ferry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// KeyText renders a key as text: the CloudEvent subject of the default
// mapping. A single-column key is its value as text. A composite key joins
// its values with "/" in key order, percent-encoding "%" and "/" inside each
// value, so distinct keys always give distinct texts.
func KeyText(key Row) string {
	if len(key.Values) == 1 {
		return ValueText(key.Values[0])
	}
	var b strings.Builder
	for i, v := range key.Values {
		if i > 0 {
			b.WriteByte('/')
		}
		t := ValueText(v)
		if strings.ContainsAny(t, "%/") {
			t = strings.ReplaceAll(t, "%", "%25")
			t = strings.ReplaceAll(t, "/", "%2F")
		}
		b.WriteString(t)
	}
	return b.String()
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
