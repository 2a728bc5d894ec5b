package mysql

import (
	"fmt"
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
		out := s.handOver(buf)
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
	if got := s.handOver(nil); len(got) != 0 {
		t.Errorf("handOver(nil) = %d changes", len(got))
	}
}
