// Package jsonscan checks JSON syntax fast: Valid accepts exactly what
// encoding/json.Valid accepts (RFC 8259; bytes of strings are not checked
// for UTF-8; at most 10,000 nested containers) in one tight pass. The
// structured encoding checks every event's JSON data with it, where
// encoding/json's state machine, a function call per byte, was 11 % of
// ferry's CPU in HTTP batch mode (issue 18).
package jsonscan

// maxDepth is encoding/json's nesting limit: deeper input is invalid.
const maxDepth = 10000

// Valid reports whether b is one JSON value, optionally surrounded by
// whitespace.
func Valid(b []byte) bool {
	var inline [64]byte
	stack := inline[:0] // the open containers' opening brackets
	i := skipSpace(b, 0)
	for {
		// A value starts at b[i] (i < 0: what led to it was invalid).
		if i < 0 || i >= len(b) {
			return false
		}
		if c := b[i]; c == '{' || c == '[' {
			if len(stack) == maxDepth {
				return false
			}
			stack = append(stack, c)
			if i = skipSpace(b, i+1); i >= len(b) || b[i] != closing(c) {
				if c == '{' {
					i = key(b, i)
				}
				continue // the first element
			}
			// Empty: its closing bracket is consumed below.
		} else if i = scalar(b, i); i < 0 {
			return false
		}
		// After a value: closing brackets, then a comma and, in an
		// object, the next key.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				return i == len(b)
			}
			if i >= len(b) {
				return false
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				if i = skipSpace(b, i+1); top == '{' {
					i = key(b, i)
				}
				break
			}
			if b[i] != closing(top) {
				return false
			}
			stack = stack[:len(stack)-1]
			i++
		}
	}
}

func closing(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

// scalar scans the string, number or literal at b[i].
func scalar(b []byte, i int) int {
	switch c := b[i]; {
	case c == '"':
		return str(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return number(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return -1
}

// key scans `"name" :` and the whitespace after it.
func key(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = skipSpace(b, str(b, i)); i < 0 || i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

func skipSpace(b []byte, i int) int {
	if i < 0 {
		return i
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// plain marks the bytes a string holds as they are: not a control
// character, quote or backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str scans the string starting at the quote b[i].
func str(b []byte, i int) int {
	for i++; i < len(b); i++ {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i == len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i++; i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !hex(b[i+1]) || !hex(b[i+2]) || !hex(b[i+3]) || !hex(b[i+4]) {
					return -1
				}
				i += 4
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
	return -1
}

func hex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		return digits(b, i)
	}
	return i
}

// digits scans one or more digits.
func digits(b []byte, i int) int {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

func literal(b []byte, i int, word string) int {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}
