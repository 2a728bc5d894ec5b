package pipeline

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds, in seconds, of the delivery latency
// histogram. Binlog commit times have a resolution of one second, so the
// buckets below one second mostly tell webhook deliveries apart.
var latencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// LatencyBuckets returns the upper bounds, in seconds, of the buckets of
// every Histogram.
func LatencyBuckets() []float64 { return slices.Clone(latencyBuckets[:]) }

// Histogram counts durations into LatencyBuckets. Observe and Snapshot are
// safe for concurrent use; they use atomics only, so the sink worker pays
// a few nanoseconds per delivered event.
type Histogram struct {
	counts   [len(latencyBuckets) + 1]atomic.Uint64 // one per bucket, plus +Inf
	sumNanos atomic.Uint64
}

// Observe records one duration; negative durations (clock skew between the
// database and this host) count as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(uint64(d))
}

// HistogramSnapshot is a histogram's state at one instant.
type HistogramSnapshot struct {
	// Counts are per bucket (not cumulative), aligned with LatencyBuckets,
	// plus a last one for values above every bound.
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// Snapshot returns the current counts.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Counts: make([]uint64, len(h.counts)), Sum: time.Duration(h.sumNanos.Load())}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	return s
}

// Quantile estimates the q-quantile (0 < q < 1) by linear interpolation
// inside the bucket holding it, as Prometheus' histogram_quantile does. It
// returns 0 without observations, and the highest bound for values beyond it.
func (s HistogramSnapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	var seen float64
	for i, c := range s.Counts {
		if c == 0 || seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		if i == len(latencyBuckets) {
			break
		}
		lower := 0.0
		if i > 0 {
			lower = latencyBuckets[i-1]
		}
		v := lower + (latencyBuckets[i]-lower)*(rank-seen)/float64(c)
		return time.Duration(math.Round(v * float64(time.Second)))
	}
	return time.Duration(latencyBuckets[len(latencyBuckets)-1] * float64(time.Second))
}

// Mean returns the average duration, 0 without observations.
func (s HistogramSnapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}
