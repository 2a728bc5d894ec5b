package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// The default mapping's data, written with a table's cached heads and
// column keys, is byte for byte AppendChangeData's: for every operation
// (including ones without a name), key, before and after images present or
// not, columns that change between changes of one table (schema changes,
// partial images) and names that need escaping.
func TestCachedChangeDataEqualsAppendChangeData(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	names := []string{"id", "name", `quo"te`, "back\\slash", "ünï", "tab\there", "\u2028", "x"}
	cols := func() []string {
		n := rng.IntN(4)
		out := make([]string, n)
		for i := range out {
			out[i] = names[rng.IntN(len(names))]
		}
		return out
	}
	row := func(cs []string) ferry.Row {
		if rng.IntN(4) == 0 {
			return ferry.Row{}
		}
		vals := make([]any, len(cs))
		for i := range vals {
			switch rng.IntN(4) {
			case 0:
				vals[i] = int64(rng.IntN(1000))
			case 1:
				vals[i] = fmt.Sprintf("v%d\n", rng.IntN(10))
			case 2:
				vals[i] = nil
			default:
				vals[i] = json.RawMessage(`{"a":1}`)
			}
		}
		return ferry.Row{Columns: cs, Values: vals}
	}
	for _, table := range [][2]string{{"db", "t"}, {`d"b`, "t\u2029"}} {
		d := newTableData(table[0], table[1])
		shared := cols()
		for i := range 2000 {
			cs := shared
			if rng.IntN(10) == 0 {
				cs = cols()
			}
			c := &ferry.Change{ID: fmt.Sprint(i), Op: ferry.Op(rng.IntN(10)), DB: table[0], Table: table[1],
				Key: row(cs[:min(1, len(cs))]), Before: row(cs), After: row(cs), Time: time.UnixMilli(int64(i)),
				Binlog: ferry.BinlogCoords{File: "f", Pos: uint64(i), GTID: "0-1-2", TxID: "0-1-2", TxOrder: i}}
			want := AppendChangeData(nil, c)
			got := d.appendChangeData([]byte("prefix"), c)
			if !bytes.Equal(got[len("prefix"):], want) {
				t.Fatalf("change %d:\n got %s\nwant %s", i, got[len("prefix"):], want)
			}
		}
	}
}
