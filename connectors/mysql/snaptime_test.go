package mysql

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// goMySQLTemporal is how the snapshot rendered a temporal value before it
// read them raw: go-mysql's text, cut to the column's precision, then the
// binlog path's converters.
func goMySQLTemporal(t *testing.T, k temporalKind, b []byte, fsp int) any {
	t.Helper()
	var (
		text []byte
		err  error
	)
	switch k {
	case temporalDate:
		text, err = gomysql.FormatBinaryDate(len(b), b)
	case temporalTime:
		text, err = gomysql.FormatBinaryTime(len(b), b)
	default:
		text, err = gomysql.FormatBinaryDateTime(len(b), b)
	}
	if err != nil {
		return err
	}
	s := string(text)
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[:min(len(s), i+1+fsp)]
		if fsp == 0 {
			s = s[:i]
		}
	}
	switch k {
	case temporalDate:
		return dateValue(s)
	case temporalDateTime:
		return datetimeValue(fsp)(s)
	case temporalTimestamp:
		return timestampValue(fsp)(s)
	}
	return timeValue(fsp)(s)
}

func snapTemporal(k temporalKind, b []byte, fsp int) (any, error) {
	var a textArena
	switch k {
	case temporalDate:
		return snapDate(b, &a)
	case temporalDateTime:
		return snapDateTime(b, fsp, "", &a)
	case temporalTimestamp:
		return snapDateTime(b, fsp, "Z", &a)
	}
	return snapTime(b, fsp, &a)
}

// randomTemporal is a binary-protocol value of n bytes: mostly valid
// fields, sometimes zero ones (zero dates, zero months or days).
func randomTemporal(r *rand.Rand, k temporalKind, n int) []byte {
	b := make([]byte, n)
	pick := func(hi int) byte {
		if r.IntN(8) == 0 {
			return 0
		}
		return byte(r.IntN(hi + 1))
	}
	if k == temporalTime {
		if n == 0 {
			return b
		}
		b[0] = byte(r.IntN(2))
		binary.LittleEndian.PutUint32(b[1:], uint32(r.IntN(35)))
		b[5], b[6], b[7] = pick(23), pick(59), pick(59)
		if n == 12 {
			binary.LittleEndian.PutUint32(b[8:], uint32(r.IntN(1_000_000)))
		}
		return b
	}
	if n == 0 {
		return b
	}
	year := uint16(r.IntN(10000))
	if r.IntN(8) == 0 {
		year = 0
	}
	binary.LittleEndian.PutUint16(b, year)
	b[2], b[3] = pick(12), pick(31)
	if n >= 7 {
		b[4], b[5], b[6] = pick(23), pick(59), pick(59)
	}
	if n == 11 {
		micro := uint32(r.IntN(1_000_000))
		if r.IntN(4) == 0 {
			micro = uint32(r.IntN(10)) * 100_000 // trailing zeros
		}
		binary.LittleEndian.PutUint32(b[7:], micro)
	}
	return b
}

// TestSnapshotTemporalMatchesGoMySQL: the snapshot's own rendering of raw
// temporal values equals go-mysql's formatting followed by the binlog
// path's converters, for every length the protocol sends, every precision,
// zero dates and negative times; invalid lengths are errors in both.
func TestSnapshotTemporalMatchesGoMySQL(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 3))
	lengths := map[temporalKind][]int{
		temporalDate:      {0, 4},
		temporalDateTime:  {0, 4, 7, 11},
		temporalTimestamp: {0, 4, 7, 11},
		temporalTime:      {0, 8, 12},
	}
	for k, ns := range lengths {
		for _, n := range ns {
			for fsp := 0; fsp <= 6; fsp++ {
				for range 300 {
					b := randomTemporal(r, k, n)
					got, err := snapTemporal(k, b, fsp)
					if err != nil {
						t.Fatalf("kind %d, % x, fsp %d: %v", k, b, fsp, err)
					}
					if want := goMySQLTemporal(t, k, b, fsp); !reflect.DeepEqual(got, want) {
						t.Fatalf("kind %d, % x, fsp %d: got %#v, go-mysql gives %#v", k, b, fsp, got, want)
					}
				}
			}
		}
		for _, n := range []int{1, 3, 5, 9, 13} {
			b := make([]byte, n)
			if _, err := snapTemporal(k, b, 6); err == nil {
				t.Errorf("kind %d: %d bytes accepted", k, n)
			}
		}
	}
}

// TestSnapshotTemporalKeyText: a raw temporal key is kept as go-mysql's
// text, the form checkpoints written before held.
func TestSnapshotTemporalKeyText(t *testing.T) {
	dt := []byte{0xe8, 0x07, 2, 29, 23, 59, 59, 0x40, 0xe2, 0x01, 0}
	p := &snapshotPlan{db: "d", table: "t", keyCols: []string{"at", "id"}, keyIdx: []int{0, 1},
		temporal: []temporalKind{temporalDateTime, notTemporal}}
	res := []gomysql.FieldValue{
		gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, dt),
		gomysql.NewFieldValue(gomysql.FieldValueTypeSigned, 7, nil),
	}
	kept := p.keepKey(nil, res)
	// a later row reuses the kept buffers; rawKey must copy
	key, err := p.rawKey(kept)
	if err != nil {
		t.Fatal(err)
	}
	p.keepKey(kept, []gomysql.FieldValue{
		gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, make([]byte, 11)),
		gomysql.NewFieldValue(gomysql.FieldValueTypeSigned, 8, nil),
	})
	want := rawKey{{kind: 's', s: []byte("2024-02-29 23:59:59.123456")}, {kind: 'i', i: 7}}
	if !reflect.DeepEqual(key, want) {
		t.Fatalf("got %+v, want %+v", key, want)
	}
}

// TestRawTemporalRewritesOnlyPlannedTypes: the temporal columns of a result
// are handed over raw; a column whose result type is not the planned one
// (the table changed since) fails the read instead of being misread.
func TestRawTemporalRewritesOnlyPlannedTypes(t *testing.T) {
	p := &snapshotPlan{db: "d", table: "t", selectCols: []string{"id", "at", "d"},
		temporal: []temporalKind{notTemporal, temporalTimestamp, temporalDate}}
	res := func(types ...byte) *gomysql.Result {
		r := &gomysql.Result{Resultset: gomysql.NewResultset(len(types))}
		for i, typ := range types {
			r.Fields[i] = &gomysql.Field{Type: typ}
		}
		return r
	}
	ok := res(gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_DATE)
	if err := p.rawTemporal(ok); err != nil {
		t.Fatal(err)
	}
	for i, want := range []byte{gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_STRING} {
		if got := ok.Fields[i].Type; got != want {
			t.Errorf("field %d: type %d, want %d", i, got, want)
		}
	}
	for _, bad := range []*gomysql.Result{
		res(gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_DATE),
		res(gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIME),
		res(gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_TIMESTAMP),
	} {
		if err := p.rawTemporal(bad); err == nil {
			t.Errorf("result of %d fields accepted", len(bad.Fields))
		}
	}
}

// TestAppendKeyTextMatchesKeyText: the in-place key text of integer keys
// is ferry.KeyText's.
func TestAppendKeyTextMatchesKeyText(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 4))
	keys := []ferry.Row{
		{Values: []any{int64(math.MinInt64)}}, {Values: []any{uint64(math.MaxUint64)}},
		{Values: []any{int64(0)}}, {Values: []any{"a/b%\x01"}}, {Values: []any{int64(1), "x/y"}},
		{Values: []any{nil}}, {Values: []any{[]byte{0xff}}},
	}
	for range 1000 {
		keys = append(keys, ferry.Row{Values: []any{int64(r.Uint64())}}, ferry.Row{Values: []any{r.Uint64()}})
	}
	for _, k := range keys {
		if got, want := string(appendKeyText([]byte("p/"), k)), "p/"+ferry.KeyText(k); got != want {
			t.Fatalf("%v: got %q, want %q", k.Values, got, want)
		}
	}
}
