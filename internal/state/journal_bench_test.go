package state

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAcceptConcurrent measures durable appends from 64 concurrent
// callers (group-committed), with a reader removing what it consumed, as
// the webhook source does under load.
func BenchmarkAcceptConcurrent(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rec := make([]byte, 600)
	stop := make(chan struct{})
	go func() { // the pipeline: read and remove
		var after uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			es, _ := s.Entries(ctx, "b", after, 512)
			if len(es) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			after = es[len(es)-1].Seq
			_, _ = s.Remove(ctx, "b", after)
		}
	}()
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			id := fmt.Sprintf("d-%d", seq.Add(1))
			t0 := time.Now()
			if _, _, err := s.Accept(ctx, "b", id, [][]byte{rec}, Answer{Status: 200, Time: time.Now().UnixNano()}); err != nil {
				b.Error(err)
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	close(stop)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
