// Command webhookbench measures the webhook source with durable
// acknowledgement: it starts `ferry run` (a webhook source journaling to
// its state store, a discarding sink) as its own process, loads it from this
// process over loopback with keep-alive connections, and reports
// acknowledged requests/s and latency percentiles.
//
//	go run ./internal/tools/webhookbench -duration 10s -concurrency 64
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-cdc/ferry/internal/tools/benchkit"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "how long to load")
	concurrency := flag.Int("concurrency", 64, "concurrent senders (keep-alive connections)")
	ack := flag.String("ack", "durable", "durable or delivered")
	flag.Parse()
	if err := run(*duration, *concurrency, *ack); err != nil {
		fmt.Fprintln(os.Stderr, "webhookbench:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, concurrency int, ack string) error {
	dir, err := os.MkdirTemp("", "ferry-webhookbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchkit.BuildFerry(dir)
	if err != nil {
		return err
	}
	addrs, err := benchkit.FreeAddrs(2)
	if err != nil {
		return err
	}
	listen, admin := addrs[0], addrs[1]
	cfg := filepath.Join(dir, "ferry.yaml")
	body := fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: %s}
defaults: {to: [out]}
sources:
  hooks: {type: webhook, listen: %s, path: /hooks/bench, id_header: X-Delivery-Id, ack: %s, buffer: {max_entries: 1000000}}
sinks:
  out: {type: discard}
`, dir, admin, listen, ack)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "-c", cfg, "--log-level", "warn")
	cmd.Env = os.Environ() // FERRY_CPUPROFILE passes through
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	url := "http://" + listen + "/hooks/bench"
	if err := waitUp(url); err != nil {
		return err
	}
	lat, errs := load(url, duration, concurrency)
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("| %s | %d | %v | %.0f | %.2f | %.2f | %.2f | %d |\n", ack, concurrency, duration, float64(len(lat))/duration.Seconds(),
		ms(pct(0.50)), ms(pct(0.99)), ms(lat[len(lat)-1]), errs)
	return waitDrained(admin, uint64(len(lat)))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// load sends for duration from concurrency workers and returns the latency
// of every acknowledged request and the number of failures.
func load(url string, duration time.Duration, concurrency int) ([]time.Duration, int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	payload := []byte(`{"order":{"id":12345,"customer":"c-778","total":"129.90","currency":"EUR","lines":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]},"event":"order.paid"}`)
	var (
		mu   sync.Mutex
		all  []time.Duration
		errs atomic.Int64
		seq  atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(duration)
	for w := 0; w < concurrency; w++ {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(stop) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Delivery-Id", fmt.Sprintf("d-%d", seq.Add(1)))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					errs.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				_, _ = resp.Body.Read(make([]byte, 256))
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, errs.Load()
}

func waitUp(url string) error {
	for i := 0; i < 200; i++ {
		resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(`{}`)))
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("ferry did not start listening on %s", url)
}

// waitDrained checks that everything acknowledged also reached the sink.
func waitDrained(admin string, n uint64) error {
	for i := 0; i < 600; i++ {
		resp, err := http.Get("http://" + admin + "/status")
		if err == nil {
			var st struct {
				Sinks map[string]struct{ Delivered uint64 } `json:"sinks"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if st.Sinks["out"].Delivered >= n {
				fmt.Fprintf(os.Stderr, "all %d acknowledged requests delivered to the sink\n", n)
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("acknowledged requests were not all delivered")
}
