package mysql

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"
	"unsafe"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/text/encoding"
)

// Ferry decodes the row images of a rows event itself, straight from the
// event's bytes into Ferry's values (issue 18): go-mysql's decoding boxes
// every value into a []interface{} row that Ferry's decoders then convert
// and box again, and formats every DATETIME with fmt.Sprintf. Each column
// decoder below gives exactly what the plan's decodeFunc gives for the
// value go-mysql would have decoded (TestBinaryDecoderMatchesGoMySQL);
// a column type it does not know sends the whole event to go-mysql's
// decoding (binUnsupported).

type binKind uint8

const (
	binUnsupported binKind = iota
	binSigned              // TINYINT..BIGINT, sign-extended to int64
	binUnsigned            // the same, UNSIGNED: zero-extended to uint64
	binFloat
	binDouble
	binDecimal
	binDate
	binDatetime2
	binTimestamp2
	binText    // a character column whose raw value is a string (VARCHAR, CHAR)
	binBlobTxt // a character column stored as a BLOB (TEXT)
	binRaw     // the value as go-mysql decodes it, then the plan's decodeFunc
)

// binCol decodes one column of a row image.
type binCol struct {
	kind binKind
	tp   byte   // the type go-mysql decodes by (a CHAR's real type resolved)
	meta uint16 // the table map's metadata
	size int    // integer width, string length class or blob length bytes
	fsp  int    // fractional digits of temporal types
	dec  *encoding.Decoder
	conv decodeFunc // binRaw: the plan's decoder of the raw value
}

// errBinValue means a value did not decode; the event is then decoded by
// go-mysql, whose error (if it has one) is the one reported.
var errBinValue = errors.New("binlog value does not decode")

// goMySQLType resolves the type and length go-mysql decodes a column by: a
// CHAR/BINARY/ENUM/SET column is logged as STRING with its real type and
// length packed into the metadata.
func goMySQLType(typ byte, meta uint16) (byte, int) {
	if typ != gomysql.MYSQL_TYPE_STRING {
		return typ, 0
	}
	if meta < 256 {
		return typ, int(meta)
	}
	b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
	if b0&0x30 != 0x30 {
		return b0 | 0x30, int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return b0, int(b1)
}

// binColumn chooses column i's binary decoder; conv is the decoder
// columnDecoder chose for it, whose choices this mirrors.
func binColumn(tm *replication.TableMapEvent, i int, c colInfo, conv decodeFunc) binCol {
	typ, meta := tm.ColumnType[i], tm.ColumnMeta[i]
	tp, length := goMySQLType(typ, meta)
	b := binCol{kind: binRaw, tp: tp, meta: meta, size: length, conv: conv}
	if !rawSupported(tp, meta) {
		return binCol{}
	}
	if tm.IsEnumColumn(i) || tm.IsSetColumn(i) {
		return b
	}
	switch typ {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24,
		gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		b.kind, b.size = binSigned, int(intBits[typ]/8)
		if c.unsigned {
			b.kind = binUnsigned
		}
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		b.kind = binDecimal
	case gomysql.MYSQL_TYPE_FLOAT:
		b.kind = binFloat
	case gomysql.MYSQL_TYPE_DOUBLE:
		b.kind = binDouble
	case gomysql.MYSQL_TYPE_DATE:
		b.kind = binDate
	case gomysql.MYSQL_TYPE_DATETIME2:
		b.kind, b.fsp = binDatetime2, int(meta)
	case gomysql.MYSQL_TYPE_TIMESTAMP2:
		b.kind, b.fsp = binTimestamp2, int(meta)
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_BLOB:
		if !c.binary && !c.json {
			b.kind, b.dec = binText, c.dec
			if tp == gomysql.MYSQL_TYPE_BLOB {
				b.kind = binBlobTxt
			}
		}
	}
	return b
}

// rawSupported lists the types this decoder reads; the rest (MySQL's
// binary JSON, TIME, the pre-5.6 temporal types, old DECIMAL, types go-mysql
// refuses) go to go-mysql.
func rawSupported(tp byte, meta uint16) bool {
	switch tp {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
		gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_DATE,
		gomysql.MYSQL_TYPE_YEAR, gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET,
		gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_GEOMETRY, gomysql.MYSQL_TYPE_VECTOR,
		gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING:
		return true
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale := meta>>8, meta&0xFF
		return prec <= 65 && scale <= 30 && scale <= prec
	case gomysql.MYSQL_TYPE_DATETIME2, gomysql.MYSQL_TYPE_TIMESTAMP2:
		return meta <= 6
	}
	return false
}

// decode returns the column's value at the start of data and its length.
func (b *binCol) decode(data []byte, a *textArena) (any, int, error) {
	switch b.kind {
	case binSigned, binUnsigned:
		if len(data) < b.size {
			return nil, 0, errBinValue
		}
		return b.integer(data), b.size, nil
	case binFloat:
		if len(data) < 4 {
			return nil, 0, errBinValue
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(data)), 4, nil
	case binDouble:
		if len(data) < 8 {
			return nil, 0, errBinValue
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(data)), 8, nil
	case binDecimal:
		return decimalBytes(data, int(b.meta>>8), int(b.meta&0xFF), a)
	case binDate:
		return dateBytes(data, a)
	case binDatetime2:
		return datetime2Bytes(data, b.fsp, a)
	case binTimestamp2:
		return timestamp2Bytes(data, b.fsp, a)
	case binText, binBlobTxt:
		return b.text(data)
	case binRaw:
		raw, n, err := b.raw(data)
		if err != nil {
			return nil, 0, err
		}
		return b.conv(raw), n, nil
	}
	return nil, 0, errBinValue
}

func (b *binCol) integer(data []byte) any {
	var u uint64
	for i := b.size - 1; i >= 0; i-- {
		u = u<<8 | uint64(data[i])
	}
	if b.kind == binUnsigned {
		return u
	}
	shift := 64 - 8*b.size
	return int64(u<<shift) >> shift
}

// text is textValue of the string go-mysql gives: VARCHAR and CHAR alias
// the event's bytes as go-mysql's strings do; TEXT is copied, as
// textValue copies the []byte go-mysql gives for a BLOB.
func (b *binCol) text(data []byte) (any, int, error) {
	var raw []byte
	var n int
	var err error
	if b.kind == binBlobTxt {
		raw, n, err = blobBytes(data, b.meta)
	} else {
		raw, n, err = stringBytes(data, b.length())
	}
	if err != nil {
		return nil, 0, err
	}
	var s string
	if b.kind == binBlobTxt {
		s = string(raw)
	} else {
		s = unsafe.String(unsafe.SliceData(raw), len(raw))
	}
	if b.dec == nil || isASCII(s) {
		return s, n, nil
	}
	return textValue(b.dec)(s), n, nil
}

func (b *binCol) length() int {
	if b.tp == gomysql.MYSQL_TYPE_VARCHAR || b.tp == gomysql.MYSQL_TYPE_VAR_STRING {
		return int(b.meta)
	}
	return b.size
}

// stringBytes reads a length-prefixed string: one length byte for columns
// under 256 bytes, two above.
func stringBytes(data []byte, length int) ([]byte, int, error) {
	h := 1
	if length >= 256 {
		h = 2
	}
	if len(data) < h {
		return nil, 0, errBinValue
	}
	n := int(data[0])
	if h == 2 {
		n = int(binary.LittleEndian.Uint16(data))
	}
	if len(data) < h+n {
		return nil, 0, errBinValue
	}
	return data[h : h+n], h + n, nil
}

// blobBytes reads a BLOB: meta is how many bytes its length takes.
func blobBytes(data []byte, meta uint16) ([]byte, int, error) {
	h := int(meta)
	if h < 1 || h > 4 || len(data) < h {
		return nil, 0, errBinValue
	}
	n := 0
	for i := h - 1; i >= 0; i-- {
		n = n<<8 | int(data[i])
	}
	if n < 0 || len(data) < h+n {
		return nil, 0, errBinValue
	}
	return data[h : h+n], h + n, nil
}

// raw decodes the value with the Go type and value go-mysql gives it, for
// the plan's decodeFunc.
func (b *binCol) raw(data []byte) (any, int, error) {
	switch b.tp {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24,
		gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		return rawInt(b.tp, data)
	case gomysql.MYSQL_TYPE_YEAR:
		if len(data) < 1 {
			return nil, 0, errBinValue
		}
		if data[0] == 0 {
			return 0, 1, nil
		}
		return int(data[0]) + 1900, 1, nil
	case gomysql.MYSQL_TYPE_BIT:
		nbits := int(b.meta>>8)*8 + int(b.meta&0xFF)
		n := (nbits + 7) / 8
		if n < 1 || n > 8 || (nbits == 1 && n != 1) || len(data) < n {
			return nil, 0, errBinValue
		}
		return int64(bigEndian(data[:n])), n, nil
	case gomysql.MYSQL_TYPE_ENUM:
		switch b.meta & 0xFF {
		case 1:
			if len(data) >= 1 {
				return int64(data[0]), 1, nil
			}
		case 2:
			if len(data) >= 2 {
				return int64(binary.LittleEndian.Uint16(data)), 2, nil
			}
		}
		return nil, 0, errBinValue
	case gomysql.MYSQL_TYPE_SET:
		n := int(b.meta & 0xFF)
		if n < 1 || n > 8 || len(data) < n {
			return nil, 0, errBinValue
		}
		return int64(littleEndian(data[:n])), n, nil
	case gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_GEOMETRY, gomysql.MYSQL_TYPE_VECTOR:
		return blobBytes(data, b.meta)
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING:
		v, n, err := stringBytes(data, b.length())
		return unsafe.String(unsafe.SliceData(v), len(v)), n, err
	}
	return nil, 0, errBinValue
}

func rawInt(tp byte, data []byte) (any, int, error) {
	n := int(intBits[tp] / 8)
	if len(data) < n {
		return nil, 0, errBinValue
	}
	switch tp {
	case gomysql.MYSQL_TYPE_TINY:
		return int8(data[0]), 1, nil
	case gomysql.MYSQL_TYPE_SHORT:
		return int16(binary.LittleEndian.Uint16(data)), 2, nil
	case gomysql.MYSQL_TYPE_INT24:
		u := uint32(littleEndian(data[:3]))
		if u&0x800000 != 0 {
			u |= 0xFF000000 // sign-extend, as go-mysql does
		}
		return int32(u), 3, nil
	case gomysql.MYSQL_TYPE_LONG:
		return int32(binary.LittleEndian.Uint32(data)), 4, nil
	}
	return int64(binary.LittleEndian.Uint64(data)), 8, nil
}

func littleEndian(b []byte) uint64 {
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	return u
}

func bigEndian(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

// appendPadded appends v in decimal, zero-padded to at least width digits.
func appendPadded(dst []byte, v int64, width int) []byte {
	switch { // the widths of dates and times, without strconv
	case width == 2 && v >= 0 && v < 100:
		return append(dst, byte('0'+v/10), byte('0'+v%10))
	case width == 4 && v >= 0 && v < 10000:
		return append(dst, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	var tmp [20]byte
	d := strconv.AppendInt(tmp[:0], v, 10)
	for i := len(d); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, d...)
}

// timestampLayouts render a TIMESTAMP in UTC, as go-mysql's parser is
// configured (rawEvents.parse), in the ISO form timestampValue gives.
var timestampLayouts = [7]string{
	"2006-01-02T15:04:05Z", "2006-01-02T15:04:05.0Z", "2006-01-02T15:04:05.00Z", "2006-01-02T15:04:05.000Z",
	"2006-01-02T15:04:05.0000Z", "2006-01-02T15:04:05.00000Z", "2006-01-02T15:04:05.000000Z",
}

// fraction reads the fractional seconds of a v2 temporal value, in
// microseconds, from its (fsp+1)/2 bytes.
func fraction(data []byte, fsp int) int64 {
	switch fsp {
	case 1, 2:
		return int64(data[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(data)) * 100
	case 5, 6:
		return int64(bigEndian(data[:3]))
	}
	return 0
}

func timestamp2Bytes(data []byte, fsp int, a *textArena) (any, int, error) {
	n := 4 + (fsp+1)/2
	if len(data) < n {
		return nil, 0, errBinValue
	}
	sec := int64(binary.BigEndian.Uint32(data))
	if sec == 0 {
		return nil, n, nil // the zero TIMESTAMP
	}
	usec := fraction(data[4:], fsp)
	var buf [32]byte
	out := time.Unix(sec, usec*1000).UTC().AppendFormat(buf[:0], timestampLayouts[fsp])
	return a.text(out), n, nil
}
