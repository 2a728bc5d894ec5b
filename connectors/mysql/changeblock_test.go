package mysql

import (
	"context"
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

// A transaction that outgrows the block gets room for as many changes as
// the last one held and is handed over in it when the guess was close;
// one with more than a quarter of its room unused is handed over in a
// copy of its length. Either way a handed-over batch keeps its changes
// while later transactions are buffered.
func TestGrowBufGuessesFromTheLastTransaction(t *testing.T) {
	s := &stream{cfg: &Config{MaxTxBuffer: 100000, MaxTxBufferBytes: 1 << 30}}
	ctx := context.Background()
	var emitted [][]ferry.Change
	sizes := []int{1000, 1000, 990, 3, 70, 1500, maxGuess + 500, 900, 1000, 1000}
	for i, n := range sizes {
		s.tx.buf = s.newBuf()
		for j := range n {
			if err := s.buffer(ctx, ferry.Change{ID: fmt.Sprintf("%d#%d", i, j), After: ferry.Row{Values: []any{j}}}); err != nil {
				t.Fatal(err)
			}
			if j == changeBlockSize && i > 0 && sizes[i-1] > changeBlockSize {
				if want := min(sizes[i-1], maxGuess); cap(s.tx.buf) < want {
					t.Fatalf("transaction %d outgrew the block into room for %d changes, want %d (the last one's)", i, cap(s.tx.buf), want)
				}
			}
		}
		buf := s.tx.buf
		out := s.handOver(buf, s.tx.bufBytes)
		s.tx = txState{}
		if len(out) != n || cap(out) != len(out) {
			t.Fatalf("transaction %d: handed over len %d cap %d, want %d", i, len(out), cap(out), n)
		}
		if copied := &out[0] != &buf[0]; n > changeBlockSize && copied != (cap(buf) > n+n/4) {
			t.Fatalf("transaction %d of %d changes in room for %d: copied %v", i, n, cap(buf), copied)
		}
		emitted = append(emitted, out)
	}
	for i, b := range emitted {
		for j, c := range b {
			if want := fmt.Sprintf("%d#%d", i, j); c.ID != want || c.After.Values[0] != j {
				t.Fatalf("transaction %d change %d: ID %q, want %q (overwritten by a later buffer)", i, j, c.ID, want)
			}
		}
	}
}
