package mysql

import (
	"encoding/binary"
	"fmt"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// The snapshot reads DATE, DATETIME, TIMESTAMP and TIME values as the bytes
// the binary protocol carries instead of letting go-mysql format each one
// with fmt.Sprintf (a third of the chunk loop's reading in a profile), and
// renders them here straight into the contract's text. The result equals
// what formatting with go-mysql and converting that text gives
// (TestSnapshotTemporalMatchesGoMySQL compares both on every length).
//
// Binary protocol layout (after the one-byte length, which go-mysql reads
// as a length-encoded string once the field's type says string):
//   date/datetime: 0, 4 (y y m d), 7 (+ h m s) or 11 (+ µs as 4 bytes) bytes
//   time: 0, 8 (neg, days as 4 bytes, h m s) or 12 (+ µs as 4 bytes) bytes

// temporalKind says how a column's raw temporal bytes are rendered.
type temporalKind byte

const (
	notTemporal temporalKind = iota
	temporalDate
	temporalDateTime
	temporalTimestamp
	temporalTime
)

// temporalKindOf is the kind of an information_schema DATA_TYPE.
func temporalKindOf(dataType string) temporalKind {
	switch dataType {
	case "date":
		return temporalDate
	case "datetime":
		return temporalDateTime
	case "timestamp":
		return temporalTimestamp
	case "time":
		return temporalTime
	}
	return notTemporal
}

// accepts reports whether a result field of type t carries values of kind k
// in the layout above.
func (k temporalKind) accepts(t byte) bool {
	switch k {
	case temporalDate:
		return t == gomysql.MYSQL_TYPE_DATE || t == gomysql.MYSQL_TYPE_NEWDATE
	case temporalDateTime, temporalTimestamp:
		return t == gomysql.MYSQL_TYPE_DATETIME || t == gomysql.MYSQL_TYPE_TIMESTAMP
	case temporalTime:
		return t == gomysql.MYSQL_TYPE_TIME
	}
	return false
}

// dateTimeParts are the fields of a binary DATE/DATETIME/TIMESTAMP value.
type dateTimeParts struct {
	year                 uint16
	month, day, h, mi, s byte
	micro                uint32
}

func parseBinaryDateTime(b []byte) (dateTimeParts, error) {
	var p dateTimeParts
	switch len(b) {
	case 0:
	case 4, 7, 11:
		p.year, p.month, p.day = binary.LittleEndian.Uint16(b), b[2], b[3]
		if len(b) >= 7 {
			p.h, p.mi, p.s = b[4], b[5], b[6]
		}
		if len(b) == 11 {
			p.micro = binary.LittleEndian.Uint32(b[7:])
		}
	default:
		return p, fmt.Errorf("invalid datetime value of %d bytes", len(b))
	}
	return p, nil
}

// snapDate renders a DATE as YYYY-MM-DD, null for a zero date (as dateValue).
func snapDate(b []byte, a *textArena) (any, error) {
	if len(b) != 0 && len(b) != 4 {
		return nil, fmt.Errorf("invalid date value of %d bytes", len(b))
	}
	p, _ := parseBinaryDateTime(b)
	if p.month == 0 || p.day == 0 {
		return nil, nil
	}
	var buf [16]byte
	return a.text(appendDate(buf[:0], int64(p.year), int64(p.month), int64(p.day))), nil
}

// snapDateTime renders a DATETIME (zone "") or TIMESTAMP (zone "Z") as
// datetimeValue and timestampValue do: ISO-8601 with exactly fsp fractional
// digits, null for the zero values each of them treats as null.
func snapDateTime(b []byte, fsp int, zone string, a *textArena) (any, error) {
	p, err := parseBinaryDateTime(b)
	if err != nil {
		return nil, err
	}
	if zone == "" && (p.month == 0 || p.day == 0) ||
		zone != "" && p.year == 0 && p.month == 0 && p.day == 0 {
		return nil, nil
	}
	var buf [48]byte
	out := appendDate(buf[:0], int64(p.year), int64(p.month), int64(p.day))
	out = append(out, 'T')
	out = appendClock(out, int64(p.h), int64(p.mi), int64(p.s))
	out = appendFraction(out, p.micro, fsp)
	return a.text(append(out, zone...)), nil
}

// snapTime renders a TIME as timeValue does: [-]HH:MM:SS with exactly fsp
// fractional digits (hours may exceed 24).
func snapTime(b []byte, fsp int, a *textArena) (any, error) {
	var buf [32]byte
	out := buf[:0]
	var micro uint32
	switch len(b) {
	case 0:
		out = append(out, "00:00:00"...)
	case 8, 12:
		if b[0] == 1 {
			out = append(out, '-')
		}
		// go-mysql reads the low byte of the days only: TIME's range,
		// ±838:59:59, is under 35 days.
		out = appendClock(out, int64(b[1])*24+int64(b[5]), int64(b[6]), int64(b[7]))
		if len(b) == 12 {
			micro = binary.LittleEndian.Uint32(b[8:])
		}
	default:
		return nil, fmt.Errorf("invalid time value of %d bytes", len(b))
	}
	return a.text(appendFraction(out, micro, fsp)), nil
}

// appendDate appends YYYY-MM-DD (the binlog's and the backfill's dates).
func appendDate(buf []byte, year, month, day int64) []byte {
	buf = appendPadded(buf, year, 4)
	buf = append(buf, '-')
	buf = appendPadded(buf, month, 2)
	buf = append(buf, '-')
	return appendPadded(buf, day, 2)
}

// appendClock appends HH:MM:SS, the hours at least two digits.
func appendClock(buf []byte, h, mi, s int64) []byte {
	buf = appendPadded(buf, h, 2)
	buf = append(buf, ':')
	buf = appendPadded(buf, mi, 2)
	buf = append(buf, ':')
	return appendPadded(buf, s, 2)
}

// appendFraction writes the first fsp digits of the six-digit microseconds
// (the binary protocol's precision, which go-mysql prints with %06d) after
// a '.'; nothing when fsp is 0. Absent microseconds are zero.
func appendFraction(buf []byte, micro uint32, fsp int) []byte {
	if fsp <= 0 {
		return buf
	}
	buf = append(buf, '.')
	start := len(buf)
	buf = appendPadded(buf, int64(micro), 6)
	return buf[:start+min(fsp, len(buf)-start)]
}

// temporalKeyText is a raw temporal key value as go-mysql formats it: the
// form checkpoints store and the next chunk's condition compares with.
func temporalKeyText(k temporalKind, b []byte) ([]byte, error) {
	if k == temporalTime {
		return gomysql.FormatBinaryTime(len(b), b)
	}
	if k == temporalDate {
		return gomysql.FormatBinaryDate(len(b), b)
	}
	return gomysql.FormatBinaryDateTime(len(b), b)
}
