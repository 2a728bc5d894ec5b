package mysql

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/ferry-cdc/ferry"
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

// TestMariaGTIDStateAfterCommits: the state rendered after each commit (kept
// as the committed GTID's text while there is one domain) is the state
// rendered from the domains, across seeds, new domains and rollbacks.
func TestMariaGTIDStateAfterCommits(t *testing.T) {
	g := newGTIDTracker(gomysql.MariaDBFlavor)
	if err := g.seed("0-1-5"); err != nil {
		t.Fatal(err)
	}
	tx := func(domain, server uint32, seq uint64, commit bool) {
		raw := make([]byte, replication.EventHeaderSize, replication.EventHeaderSize+13)
		raw = binary.LittleEndian.AppendUint64(raw, seq)
		raw = binary.LittleEndian.AppendUint32(raw, domain)
		g.beginMaria(&replication.BinlogEvent{RawData: append(raw, 0), Header: &replication.EventHeader{ServerID: server}})
		if commit {
			g.commit()
		} else {
			g.abort()
		}
	}
	check := func(want string) {
		t.Helper()
		got := g.state()
		text := g.text
		g.text = ""
		if rendered := g.state(); got != want || rendered != want {
			t.Errorf("state %q (rendered from the domains %q), want %q", got, rendered, want)
		}
		g.text = text
	}
	check("0-1-5")
	tx(0, 1, 6, true)
	check("0-1-6")
	tx(0, 1, 7, false)
	check("0-1-6")
	tx(1, 2, 3, true)
	check("0-1-6,1-2-3")
	tx(0, 1, 8, true)
	check("0-1-8,1-2-3")
	if err := g.seed("0-3-9"); err != nil {
		t.Fatal(err)
	}
	check("0-3-9")
	tx(0, 2, 10, true)
	check("0-2-10")
}

// TestCheckpointsCarvedAsEncoded: checkpoints carved from the stream's
// arena are the position's encoding byte for byte, and one appended to
// (a store adding a newline) leaves the next one as it was.
func TestCheckpointsCarvedAsEncoded(t *testing.T) {
	s := &stream{jobs: &jobList{}}
	long := strings.Repeat("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,", 10) + "0-1-2"
	var prev ferry.Position
	for i := range 2000 {
		p := position{File: "mariadb-bin.000012", Pos: uint32(i * 977), GTID: "0-1-" + strconv.Itoa(i), ServerID: uint32(i % 3)}
		if i%500 == 7 {
			p.GTID = long
		}
		got := s.checkpoint(p)
		if want := p.encode(); !bytes.Equal(got, want) {
			t.Fatalf("checkpoint %s, want %s", got, want)
		}
		if prev != nil {
			_ = append(prev, '\n')
		}
		if want := p.encode(); !bytes.Equal(got, want) {
			t.Fatalf("checkpoint %s changed by appending to the one before, want %s", got, want)
		}
		prev = got
	}
}

// TestMySQLSeenAsGoMySQLContains: the per-transaction "already in the
// state" check and the GTID's text are what go-mysql's Contain and
// uuid.String give, on random states.
func TestMySQLSeenAsGoMySQLContains(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sids := make([]uuid.UUID, 3)
	for i := range sids {
		for j := range sids[i] {
			sids[i][j] = byte(r.IntN(256))
		}
	}
	for range 200 {
		g := newGTIDTracker(gomysql.MySQLFlavor)
		var parts []string
		for _, sid := range sids[:1+r.IntN(len(sids))] {
			part := sid.String()
			for start := int64(1); start < 60; start += int64(2 + r.IntN(10)) {
				stop := start + int64(r.IntN(5))
				part += ":" + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(stop, 10)
				start = stop
			}
			parts = append(parts, part)
		}
		if err := g.seed(strings.Join(parts, ",")); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			sid, gno := sids[r.IntN(len(sids))], int64(1+r.IntN(70))
			one := &gomysql.MysqlGTIDSet{Sets: map[string]*gomysql.UUIDSet{
				sid.String(): gomysql.NewUUIDSet(sid, gomysql.Interval{Start: gno, Stop: gno + 1})}}
			want := g.my.Contain(one)
			seen := g.beginMySQL(&replication.GTIDEvent{SID: sid[:], GNO: gno})
			if seen != want || g.current() != sid.String()+":"+strconv.FormatInt(gno, 10) {
				t.Fatalf("%s: %s:%d seen %v (GTID %s), go-mysql's Contain %v", g.my, sid, gno, seen, g.current(), want)
			}
			g.abort()
		}
	}
}
