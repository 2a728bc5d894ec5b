package mysql

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// TestPositionEncodeEqualsJSON checks the hand-written encoder against
// encoding/json: positions are compared as bytes in checkpoints, so a
// different spelling would read as a different position.
func TestPositionEncodeEqualsJSON(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	cases := []position{
		{},
		{File: "mysql-bin.000001", Pos: 4},
		{GTID: "0-1-42"},
		{File: "bin.000002", Pos: 4294967295, GTID: "0-1-42,1-2-7", ServerID: 4294967295},
		{File: `we"ird\name<&>` + "\x01\u00e9", GTID: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"},
		{Pos: 7, ServerID: 1},
	}
	alphabet := []rune("abc-:,.0123456789\"\\<>&\x00\x1f\u00e9\u2028")
	str := func() string {
		n := r.IntN(12)
		s := make([]rune, n)
		for i := range s {
			s[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(s)
	}
	for range 2000 {
		cases = append(cases, position{File: str(), Pos: uint32(r.IntN(3)) * r.Uint32(), GTID: str(), ServerID: uint32(r.IntN(2)) * r.Uint32()})
	}
	for _, p := range cases {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.encode(); !bytes.Equal(got, want) {
			t.Fatalf("encode(%#v) = %s, json.Marshal gives %s", p, got, want)
		}
	}
}

func BenchmarkPositionEncode(b *testing.B) {
	p := position{File: "mysql-bin.000042", Pos: 123456789, GTID: "0-1-1234567", ServerID: 1}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.encode()
	}
}

func BenchmarkPositionEncodeJSON(b *testing.B) {
	p := position{File: "mysql-bin.000042", Pos: 123456789, GTID: "0-1-1234567", ServerID: 1}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(p)
	}
}

// TestMariaGTIDStateSortedByDomain: the state is a resume position compared
// as text, so its spelling (domains ascending, comma-separated) must not
// change with how it is built.
func TestMariaGTIDStateSortedByDomain(t *testing.T) {
	for in, want := range map[string]string{
		"0-1-42":             "0-1-42",
		"2-5-9,0-1-42,1-3-7": "0-1-42,1-3-7,2-5-9",
		"4294967295-4294967295-18446744073709551615,10-1-1": "10-1-1,4294967295-4294967295-18446744073709551615",
	} {
		g := newGTIDTracker(gomysql.MariaDBFlavor)
		if err := g.seed(in); err != nil {
			t.Fatal(err)
		}
		if got := g.state(); got != want {
			t.Errorf("state after seed(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkMariaGTIDState(b *testing.B) {
	g := newGTIDTracker(gomysql.MariaDBFlavor)
	if err := g.seed("0-1-1234567"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = g.state()
	}
}
