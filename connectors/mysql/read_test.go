package mysql

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/ferry-cdc/ferry"
)

// readTestSource queues batches of the given sizes, each ending a
// transaction (checkpoint "cN" after change N), then err if not nil.
func readTestSource(t *testing.T, batchSize int, sizes []int, err error) *Source {
	t.Helper()
	s := &Source{cfg: &Config{BatchSize: batchSize}, out: make(chan ferry.Batch, len(sizes)), errc: make(chan error, 1),
		gate: newGate(int64(batchSize)*100, 1<<30)}
	n := 0
	for _, size := range sizes {
		var b ferry.Batch
		for range size {
			n++
			b.Changes = append(b.Changes, ferry.Change{ID: fmt.Sprint(n)})
		}
		b.Checkpoint = ferry.Position(fmt.Sprintf("c%d", n))
		if err := s.gate.acquire(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		s.out <- b
	}
	if err != nil {
		s.errc <- err
	}
	return s
}

// Read merges queued transactions up to batch_size, never past it unless
// one transaction alone is bigger, and never one of mergeFrom changes or
// more; it keeps their order, carries the last merged checkpoint, and
// returns a fatal error only after every batch.
func TestReadMergesWithinBatchSize(t *testing.T) {
	fatal := errors.New("fatal")
	for _, c := range []struct {
		sizes     []int
		want      []int // changes per Read
		batchSize int   // at least 10
	}{
		{sizes: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, want: []int{10, 3}},
		{sizes: []int{6, 6, 6}, want: []int{6, 6, 6}},                  // a second one would pass 10: held for the next Read
		{sizes: []int{3, 3, 3, 3, 2, 12, 1}, want: []int{9, 5, 12, 1}}, // 12 alone is bigger than batch_size
		{sizes: []int{0, 4, 0, 6, 1}, want: []int{10, 1}},              // checkpoint-only batches merge too
		// Transactions of mergeFrom changes or more are returned alone.
		{sizes: []int{1000, 1000, 3, 3, mergeFrom, 1, mergeFrom - 1}, want: []int{1000, 1000, 6, mergeFrom, mergeFrom}, batchSize: 2048},
	} {
		s := readTestSource(t, max(c.batchSize, 10), c.sizes, fatal)
		next, total := 1, 0
		for _, size := range c.sizes {
			total += size
		}
		var got []int
		for {
			b, err := s.Read(context.Background())
			if err != nil {
				if !errors.Is(err, fatal) {
					t.Fatalf("sizes %v: Read error %v", c.sizes, err)
				}
				break
			}
			for _, ch := range b.Changes {
				if ch.ID != fmt.Sprint(next) {
					t.Fatalf("sizes %v: change %s, want %d (order)", c.sizes, ch.ID, next)
				}
				next++
			}
			if want := fmt.Sprintf("c%d", next-1); string(b.Checkpoint) != want {
				t.Fatalf("sizes %v: checkpoint %s after change %d, want %s", c.sizes, b.Checkpoint, next-1, want)
			}
			got = append(got, len(b.Changes))
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) || next-1 != total {
			t.Errorf("sizes %v: Reads of %v changes (%d in all), want %v (%d)", c.sizes, got, next-1, c.want, total)
		}
		if !s.gate.count.TryAcquire(s.gate.maxCount) {
			t.Errorf("sizes %v: gate not fully released after every batch was read", c.sizes)
		}
	}
}

// Merging queued single-row transactions allocates the merged batch, not
// one object per transaction merged (a received batch whose address was
// kept for holding it back escaped to the heap on every receive: an
// allocation per W2 transaction).
func TestReadMergeAllocations(t *testing.T) {
	sizes := make([]int, 1000)
	for i := range sizes {
		sizes[i] = 1
	}
	s := readTestSource(t, 2048, sizes, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b, err := s.Read(context.Background())
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	allocs := after.Mallocs - before.Mallocs
	if len(b.Changes) != 1000 {
		t.Fatalf("merged %d changes, want 1000", len(b.Changes))
	}
	if allocs > 50 {
		t.Errorf("Read allocated %d times merging 1000 transactions", allocs)
	}
}
