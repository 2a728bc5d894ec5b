package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestWebhookChaos: concurrent senders post webhooks like legacy systems do
// (each until it gets a 2xx, the same delivery id on every retry) while
// ferry is killed with SIGKILL at random instants, requests in flight. Every
// acknowledged request must reach the sink, and nothing else may.
// CHAOS_WEBHOOK_REQUESTS and CHAOS_WEBHOOK_KILLS scale it (the soak: 100k
// through 20 kills).
func TestWebhookChaos(t *testing.T) {
	requests, kills := 4_000, 5
	if os.Getenv("CHAOS_SOAK") == "1" {
		requests, kills = 100_000, 20
	}
	requests = envInt(t, "CHAOS_WEBHOOK_REQUESTS", requests)
	kills = envInt(t, "CHAOS_WEBHOOK_KILLS", kills)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d: %d requests through %d kills", seed, requests, kills)
	rng := rand.New(rand.NewPCG(seed, 4))

	r := receiver.New()
	listen := freeAddr(t)
	cfg := webhookConfig(t, t.TempDir(), listen, receiver.Start(t, r), "")
	s := newSender("http://" + listen + "/hooks/t")
	s.client.Timeout = 2 * time.Second

	var next atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(requests) && ctx.Err() == nil; i = next.Add(1) {
				id := fmt.Sprintf("w-%06d", i)
				for !s.send(id) && ctx.Err() == nil { // ferry down or killed mid-request: retry
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	p := startFerry(t, cfg)
	for k := range kills {
		// Kill once the senders made some progress, at a random instant.
		target := (k + 1) * requests / (kills + 1)
		eventually(t, 2*time.Minute, fmt.Sprintf("%d acknowledged requests", target), func() bool { return len(s.ackedIDs()) >= target })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.kill()
		t.Logf("kill %d: %d acknowledged, %d events at the sink", k+1, len(s.ackedIDs()), r.Count())
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		p = startFerry(t, cfg)
	}
	wg.Wait()
	want := s.ackedIDs()
	if len(want) != requests {
		t.Fatalf("%d of %d requests acknowledged after the senders finished", len(want), requests)
	}
	eventually(t, 2*time.Minute, fmt.Sprintf("%d acknowledged requests at the sink", len(want)), func() bool {
		return distinct(r.Events()) >= len(want)
	})
	sent := make(map[string]bool, len(want))
	for _, id := range want {
		sent[id] = true
	}
	events := r.Events()
	verifyDuplicatesIdentical(t, events)
	got := map[string]bool{}
	for _, e := range events {
		got[e.ID()] = true
		if !sent[e.ID()] {
			t.Errorf("the sink got %s, which no sender sent", e.ID())
		}
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("acknowledged request %s never arrived", id)
		}
	}
	t.Logf("%d requests acknowledged, %d events delivered (%d duplicates) through %d kills", len(want), len(events), len(events)-len(got), kills)
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// envInt reads a non-negative integer test knob.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number >= 0", name, v)
	}
	return n
}
