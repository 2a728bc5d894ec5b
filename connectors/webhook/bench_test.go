package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/state"
)

// BenchmarkDurableAck: 64 concurrent keep-alive clients posting to a
// webhook source with durable acknowledgement, while a reader drains and
// acknowledges as the pipeline does. Same process, loopback.
func BenchmarkDurableAck(b *testing.B) {
	store, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	f := startOn(&testing.T{}, store, "bench", func(c *webhook.Config) { c.IDHeader = "X-Delivery-Id"; c.Buffer.MaxEntries = 1 << 30 })
	defer f.src.Close(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			batch, err := f.src.Read(ctx)
			if err != nil {
				return
			}
			_ = batch.Ack(ctx, nil)
		}
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	payload := []byte(`{"order":{"id":12345,"customer":"c-778","total":"129.90"},"event":"order.paid"}`)
	var seq atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Delivery-Id", fmt.Sprintf("d-%d", seq.Add(1)))
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("%v %v", err, resp)
				return
			}
			resp.Body.Close()
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
