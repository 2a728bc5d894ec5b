package mysql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry"
)

// Transactions' buffers share blocks: a handed-over batch must keep its
// changes while later transactions fill the block, and appending to it (as
// Read does when merging batches) must not write into the next one's.
func TestHandOverKeepsBatchesApart(t *testing.T) {
	s := &stream{}
	var emitted [][]ferry.Change
	for i := range 300 {
		n := i%3 + 1
		if i == 100 {
			n = changeBlockSize + 5 // outgrows the block: moved out by append
		}
		buf := s.newBuf()
		if i%7 == 0 { // a rolled-back transaction: written, never handed over
			_ = append(buf, ferry.Change{ID: "rolled back"})
			buf = s.newBuf()
		}
		for j := range n {
			buf = append(buf, ferry.Change{ID: fmt.Sprintf("%d#%d", i, j)})
		}
		out := s.handOver(buf, 0)
		if len(out) != n || cap(out) != n {
			t.Fatalf("transaction %d: handed over len %d cap %d, want %d and %d", i, len(out), cap(out), n, n)
		}
		_ = append(out, ferry.Change{ID: "merged"})
		emitted = append(emitted, out)
	}
	for i, b := range emitted {
		for j, c := range b {
			if want := fmt.Sprintf("%d#%d", i, j); c.ID != want {
				t.Fatalf("transaction %d change %d: ID %q, want %q (overwritten by a later buffer)", i, j, c.ID, want)
			}
		}
	}
	if got := s.handOver(nil, 0); len(got) != 0 {
		t.Errorf("handOver(nil) = %d changes", len(got))
	}
}

// A transaction of large rows carved from a block is moved out of it when
// handed over, and one that outgrew the block leaves none of its rows in
// it: the block stays reachable while any small transaction carved from it
// is, and must not keep large rows beyond max_tx_buffer_bytes and the
// pipeline's max_in_flight_bytes.
func TestHandOverLeavesNoLargeRowsInTheBlock(t *testing.T) {
	s := &stream{}
	big := strings.Repeat("x", blockLarge)
	row := func(id string) ferry.Change { return ferry.Change{ID: id, After: ferry.Row{Values: []any{big}}} }

	buf := s.newBuf()
	slot := buf[:1] // the block's next slot
	buf = append(buf, row("big#1"))
	out := s.handOver(buf, int(ferry.BatchSize(buf)))
	if &out[0] == &slot[0] {
		t.Fatal("a transaction of large rows was handed over in the block")
	}
	if slot[0].ID != "" || slot[0].After.Values != nil {
		t.Fatal("the block still holds the large row")
	}
	if len(out) != 1 || cap(out) != 1 || out[0].ID != "big#1" || out[0].After.Values[0] != big {
		t.Fatalf("handed over %d changes (cap %d), %q", len(out), cap(out), out[0].ID)
	}

	buf = s.newBuf()
	slot = buf[:1]
	for j := range changeBlockSize + 1 { // outgrows the block: moved out by append
		buf = append(buf, row(fmt.Sprintf("huge#%d", j+1)))
	}
	out = s.handOver(buf, int(ferry.BatchSize(buf)))
	if slot[0].ID != "" || slot[0].After.Values != nil {
		t.Fatal("a transaction that outgrew the block left its first rows in it")
	}
	if len(out) != changeBlockSize+1 || out[0].ID != "huge#1" || out[changeBlockSize].ID != fmt.Sprintf("huge#%d", changeBlockSize+1) {
		t.Fatalf("handed over %d changes", len(out))
	}

	small := append(s.newBuf(), ferry.Change{ID: "small#1"}) // small ones still share the block
	if got := s.handOver(small, 300); &got[0] != &slot[0] {
		t.Fatal("a small transaction was not carved from the block")
	}
}

// A transaction that outgrows its block grows at once to the size of the
// last one that did (bulk loads of similar transactions are moved once,
// not at every doubling); one that stays below half of that is handed
// over in a buffer of its own size, so the batch holds no unused rest.
func TestTransactionBufferGrowsToTheLastSize(t *testing.T) {
	s := &stream{cfg: &Config{MaxTxBuffer: 10000}}
	fill := func(tx, n int) []ferry.Change {
		s.tx.buf = s.newBuf()
		grows := 0
		for j := range n {
			before := cap(s.tx.buf)
			s.appendChange(ferry.Change{ID: fmt.Sprintf("%d#%d", tx, j)})
			if cap(s.tx.buf) != before {
				grows++
			}
		}
		if tx > 0 && n > changeBlockSize && n <= s.grownTo && grows != 1 {
			t.Errorf("transaction %d of %d changes (last %d): buffer grew %d times, want once", tx, n, s.grownTo, grows)
		}
		return s.handOver(s.tx.buf, 0)
	}
	for tx, n := range []int{1000, 1000, 990, 3, 400, 2000, 2000, 70, 70} {
		out := fill(tx, n)
		if len(out) != n || cap(out) > 2*n && cap(out) > changeBlockSize {
			t.Fatalf("transaction %d: handed over len %d cap %d, want %d changes", tx, len(out), cap(out), n)
		}
		for j, c := range out {
			if want := fmt.Sprintf("%d#%d", tx, j); c.ID != want {
				t.Fatalf("transaction %d change %d: ID %q, want %q", tx, j, c.ID, want)
			}
		}
	}
	s.grownTo = 1 << 30 // never beyond max_tx_buffer
	s.tx.buf = s.newBuf()
	for range changeBlockSize + 1 {
		s.appendChange(ferry.Change{ID: "x"})
	}
	if c := cap(s.tx.buf); c > 2*s.cfg.MaxTxBuffer {
		t.Errorf("grew to %d changes, max_tx_buffer is %d", c, s.cfg.MaxTxBuffer)
	}
}
