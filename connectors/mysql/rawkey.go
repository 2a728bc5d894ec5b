package mysql

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// rawKey is the last key a backfill read, as the server sent it: what the
// next chunk's condition compares with, and what checkpoints store.
type rawKey []rawValue

// rawValue is one key column's value: an integer, a float or bytes (text,
// binary, temporal values as the server formats them).
type rawValue struct {
	kind byte // 'i', 'u', 'f' or 's'
	i    int64
	u    uint64
	f    float64
	s    []byte
}

// arg is the value as a statement argument.
func (v rawValue) arg() any {
	switch v.kind {
	case 'i':
		return v.i
	case 'u':
		return v.u
	case 'f':
		return v.f
	}
	return v.s
}

// MarshalJSON writes "i:-5", "u:18446744073709551615", "f:<IEEE bits>" or
// "s:<base64>": exact for every value, including binary keys.
func (v rawValue) MarshalJSON() ([]byte, error) {
	var s string
	switch v.kind {
	case 'i':
		s = "i:" + strconv.FormatInt(v.i, 10)
	case 'u':
		s = "u:" + strconv.FormatUint(v.u, 10)
	case 'f':
		s = "f:" + strconv.FormatUint(math.Float64bits(v.f), 16)
	default:
		s = "s:" + base64.StdEncoding.EncodeToString(v.s)
	}
	return json.Marshal(s)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (v *rawValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if len(s) < 2 || s[1] != ':' {
		return fmt.Errorf("invalid key value %q", s)
	}
	body := s[2:]
	var err error
	*v = rawValue{kind: s[0]}
	switch s[0] {
	case 'i':
		v.i, err = strconv.ParseInt(body, 10, 64)
	case 'u':
		v.u, err = strconv.ParseUint(body, 10, 64)
	case 'f':
		var bits uint64
		bits, err = strconv.ParseUint(body, 16, 64)
		v.f = math.Float64frombits(bits)
	case 's':
		v.s, err = base64.StdEncoding.DecodeString(body)
	default:
		err = fmt.Errorf("unknown kind %q", s[0])
	}
	if err != nil {
		return fmt.Errorf("invalid key value %q: %w", s, err)
	}
	return nil
}
