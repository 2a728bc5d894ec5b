package ha_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/ha"
	"github.com/ferry-cdc/ferry/internal/testkit/kubefake"
)

func startFake(t *testing.T) (*kubefake.Server, string, string) {
	t.Helper()
	f := kubefake.New("s3cret-token")
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, srv.URL, tok
}

func kubeLease(t *testing.T, url, tok, identity string) *ha.KubernetesLease {
	t.Helper()
	l, err := ha.NewKubernetes(ha.KubernetesOptions{Name: "ferry", Namespace: "apps", Identity: identity,
		LeaseDuration: 2 * time.Second, RenewInterval: 200 * time.Millisecond, APIServer: url, TokenFile: tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

var leasePath = kubefake.LeasePath("apps", "ferry")

// TestKubernetesLeaseTakeover: a creates and holds the Lease; b stands by
// while a renews; a stops renewing (a crashed process); b takes the Lease
// once it has not changed for its duration; a's Keep then reports the loss
// and its checkpoint guard refuses writes.
func TestKubernetesLeaseTakeover(t *testing.T) {
	f, url, tok := startFake(t)
	a, b := kubeLease(t, url, tok, "pod-a"), kubeLease(t, url, tok, "pod-b")
	ctx := context.Background()
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Valid(); err != nil {
		t.Fatalf("holder not valid: %v", err)
	}
	keepCtx, stopKeep := context.WithCancel(ctx)
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(keepCtx) }()

	acquired := make(chan time.Time, 1)
	go func() {
		if err := b.Acquire(ctx); err == nil {
			acquired <- time.Now()
		}
	}()
	select {
	case <-acquired:
		t.Fatal("standby took a Lease that is being renewed")
	case <-time.After(3 * time.Second): // longer than the duration: renewals keep it
	}
	stopKeep() // a "crashes": no renewal, no release
	if err := <-kept; err != nil {
		t.Fatalf("Keep after cancel: %v", err)
	}
	stopped := time.Now()
	var took time.Time
	select {
	case took = <-acquired:
	case <-time.After(10 * time.Second):
		t.Fatal("standby did not take over an expired Lease")
	}
	if d := took.Sub(stopped); d < 2*time.Second-300*time.Millisecond {
		t.Fatalf("standby took the Lease %v after the last renewal, before it expired", d)
	}
	if h := f.Holder(leasePath); h != "pod-b" {
		t.Fatalf("holder = %q, want pod-b", h)
	}
	if err := a.Valid(); !errors.Is(err, ha.ErrNotHeld) {
		t.Fatalf("deposed holder's guard = %v, want ErrNotHeld", err)
	}
	if err := a.Keep(ctx); !errors.Is(err, ha.ErrLost) {
		t.Fatalf("deposed holder's Keep = %v, want ErrLost", err)
	}
}

// TestKubernetesLeaseRace: several replicas race for a free Lease; the
// server's resourceVersion check lets exactly one win, and a clean Release
// hands it over without waiting for expiry.
func TestKubernetesLeaseRace(t *testing.T) {
	f, url, tok := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first := kubeLease(t, url, tok, "pod-0")
	if err := first.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var winners []string
	var wg sync.WaitGroup
	leases := map[string]*ha.KubernetesLease{}
	for _, id := range []string{"pod-1", "pod-2", "pod-3", "pod-4"} {
		leases[id] = kubeLease(t, url, tok, id)
	}
	raceCtx, stopRace := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stopRace()
	for id, l := range leases {
		wg.Go(func() {
			if l.Acquire(raceCtx) == nil {
				mu.Lock()
				winners = append(winners, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	if h := f.Holder(leasePath); h != winners[0] {
		t.Fatalf("holder = %q, winner %q", h, winners[0])
	}
	conflicts := f.Conflicts()
	t.Logf("winner %s, %d conflicting PUTs refused", winners[0], conflicts)
}
