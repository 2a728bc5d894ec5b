package mysql

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// The DECIMAL and date decoders write the text go-mysql would have
// formatted (with fmt for dates) and convert it the way the plan's
// decoders convert go-mysql's text, in one pass and one allocation.

// decimalGroupBytes is how many bytes a group of n < 9 decimal digits
// takes in the binlog's packed DECIMAL; a full group of 9 takes 4.
var decimalGroupBytes = [10]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

// decimalGroup reads size bytes at off, big-endian, with the packed
// format's sign bit (the top bit of the first byte) flipped back and a
// negative number's inverted bytes restored by mask.
func decimalGroup(data []byte, off, size int, mask byte) uint32 {
	var v uint32
	for i := off; i < off+size; i++ {
		c := data[i]
		if i == 0 {
			c ^= 0x80
		}
		v = v<<8 | uint32(c^mask)
	}
	return v
}

// decimalBytes renders a packed DECIMAL(prec, scale) as its exact digits:
// no leading zeros (a lone 0 before the point), the scale's digits after
// it, a leading '-' when negative.
func decimalBytes(data []byte, prec, scale int, a *textArena) (any, int, error) {
	intFull, intRem := (prec-scale)/9, (prec-scale)%9
	fracFull, fracRem := scale/9, scale%9
	n := intFull*4 + decimalGroupBytes[intRem] + fracFull*4 + decimalGroupBytes[fracRem]
	if n == 0 || len(data) < n {
		return nil, 0, errBinValue
	}
	var buf [96]byte
	out := buf[:0]
	var mask byte
	if data[0]&0x80 == 0 {
		mask = 0xFF
		out = append(out, '-')
	}
	pos := decimalGroupBytes[intRem]
	v := decimalGroup(data, 0, pos, mask)
	lead := v == 0
	if !lead {
		out = appendPadded(out, int64(v), 0)
	}
	for range intFull {
		v = decimalGroup(data, pos, 4, mask)
		pos += 4
		switch {
		case v > 999999999:
			return nil, 0, errBinValue
		case !lead:
			out = appendPadded(out, int64(v), 9)
		case v != 0:
			lead = false
			out = appendPadded(out, int64(v), 0)
		}
	}
	if lead {
		out = append(out, '0')
	}
	if scale > 0 {
		out = append(out, '.')
		for range fracFull {
			v = decimalGroup(data, pos, 4, mask)
			pos += 4
			if v > 999999999 {
				return nil, 0, errBinValue
			}
			out = appendPadded(out, int64(v), 9)
		}
		if fracRem > 0 {
			out = appendPadded(out, int64(decimalGroup(data, pos, decimalGroupBytes[fracRem], mask)), fracRem)
		}
	}
	return a.text(out), n, nil
}

// textArena holds the text of decoded values: the strings of many values
// share one allocation instead of one each. A block is only appended to,
// never rewritten, so a string stays valid however long it is kept; a
// block stays reachable while any of its strings is (4 KB at most).
type textArena struct{ buf []byte }

const textBlock = 4096

func (a *textArena) text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(textBlock, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return bytesText(a.buf[start:])
}

// bytes is a copy of b carved from the arena, its capacity clipped so that
// appending to it copies.
func (a *textArena) bytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(textBlock, len(b)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// bytesText views b as a string; b must never change afterwards.
func bytesText(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// dateBytes: a DATE is 3 bytes, little-endian, day | month<<5 | year<<9.
func dateBytes(data []byte, a *textArena) (any, int, error) {
	if len(data) < 3 {
		return nil, 0, errBinValue
	}
	v := int64(littleEndian(data[:3]))
	if v == 0 {
		return nil, 3, nil
	}
	var buf [24]byte
	out := appendDate(buf[:0], v>>9, v>>5&15, v&31)
	if isZeroDate(bytesText(out)) {
		return nil, 3, nil
	}
	return a.text(out), 3, nil
}

// datetimeIntOffset is what a DATETIME2's 5-byte integer part is stored
// offset by (so that it sorts as unsigned bytes).
const datetimeIntOffset = 0x8000000000

// datetime2Bytes decodes a DATETIME(fsp): 5 bytes big-endian holding
// year*13+month, day, hour, minute, second as bit fields, then (fsp+1)/2
// bytes of fraction.
func datetime2Bytes(data []byte, fsp int, a *textArena) (any, int, error) {
	n := 5 + (fsp+1)/2
	if len(data) < n {
		return nil, 0, errBinValue
	}
	intPart := int64(bigEndian(data[:5])) - datetimeIntOffset
	frac := fraction(data[5:], fsp)
	if intPart == 0 {
		return nil, n, nil // the zero DATETIME
	}
	packed := intPart<<24 + frac
	if packed < 0 {
		packed = -packed
	}
	fields := packed >> 24
	ymd, hms := fields>>17, fields%(1<<17)
	ym := ymd >> 5
	var buf [48]byte
	out := appendDate(buf[:0], ym/13, ym%13, ymd%(1<<5))
	out = append(out, 'T')
	out = appendClock(out, hms>>12, hms>>6%(1<<6), hms%(1<<6))
	if fsp > 0 {
		// six digits cut to fsp from the right, as go-mysql cuts them
		out = append(out, '.')
		digits := len(out)
		out = appendPadded(out, frac, 6)
		out = out[:len(out)-(6-fsp)]
		for have := len(out) - digits; have < fsp; have++ {
			out = append(out, '0')
		}
	}
	if isZeroDate(bytesText(out)) {
		return nil, n, nil
	}
	return a.text(out), n, nil
}

// keyBytesEqual reports whether a key column holds the same value in two
// images from the bytes it was decoded from: the same bytes are the same
// value, except for floating point, whose zeros compare by value.
func keyBytesEqual(b *binCol, x, y []byte) bool {
	switch b.kind {
	case binFloat:
		return len(x) == 4 && len(y) == 4 &&
			float32frombytes(x) == float32frombytes(y)
	case binDouble:
		return len(x) == 8 && len(y) == 8 &&
			float64frombytes(x) == float64frombytes(y)
	}
	return string(x) == string(y)
}

func float32frombytes(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

func float64frombytes(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
