package pipeline

import (
	"sync"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if s := h.Snapshot(); s.Count != 0 || s.Quantile(0.5) != 0 || s.Mean() != 0 {
		t.Fatalf("empty histogram: %+v", s)
	}
	// 90 fast deliveries (3 ms, bucket 2.5-5 ms) and 10 slow ones (2 s,
	// bucket 1-2.5 s), observed from several goroutines.
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Go(func() {
			for range 9 {
				h.Observe(3 * time.Millisecond)
			}
			h.Observe(2 * time.Second)
			if g == 0 {
				h.Observe(-time.Second) // clock skew counts as zero
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 101 || s.Counts[0] != 1 {
		t.Fatalf("count %d, first bucket %d", s.Count, s.Counts[0])
	}
	if p50 := s.Quantile(0.5); p50 <= 2500*time.Microsecond || p50 > 5*time.Millisecond {
		t.Errorf("p50 = %v, want within the 2.5-5 ms bucket", p50)
	}
	if p99 := s.Quantile(0.99); p99 <= time.Second || p99 > 2500*time.Millisecond {
		t.Errorf("p99 = %v, want within the 1-2.5 s bucket", p99)
	}
	wantMean := (90*3*time.Millisecond + 10*2*time.Second) / 101
	if m := s.Mean(); m != wantMean {
		t.Errorf("mean = %v, want %v", m, wantMean)
	}
	h.Observe(time.Hour) // beyond the last bound
	if q := h.Snapshot().Quantile(1); q != 600*time.Second {
		t.Errorf("max quantile = %v, want the highest bound", q)
	}
}

// BenchmarkHistogramObserve is the cost per delivered event.
func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	for b.Loop() {
		h.Observe(700 * time.Millisecond)
	}
}
