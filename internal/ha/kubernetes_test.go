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
	t.Logf("winner %s, %d conflicting updates refused", winners[0], conflicts)
}

// TestKubernetesLeaseKeepsForeignFields: a Lease created by someone else
// (a chart, an operator) keeps its labels, annotations, ownerReferences and
// the spec fields Ferry does not know through Ferry's takeover, renewals
// and release: Ferry changes only the spec fields it owns.
func TestKubernetesLeaseKeepsForeignFields(t *testing.T) {
	f, url, tok := startFake(t)
	f.Create(leasePath, map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{
			"name": "ferry", "namespace": "apps",
			"labels":          map[string]any{"app.kubernetes.io/part-of": "shop"},
			"annotations":     map[string]any{"example.com/owner": "team-data"},
			"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "ferry", "uid": "1234"}},
		},
		"spec": map[string]any{"leaseDurationSeconds": 2, "strategy": "OldestEmulationVersion"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := kubeLease(t, url, tok, "pod-a")
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	keepCtx, stopKeep := context.WithCancel(ctx)
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(keepCtx) }()
	renewed := f.Object(leasePath)["spec"].(map[string]any)["renewTime"]
	for f.Object(leasePath)["spec"].(map[string]any)["renewTime"] == renewed { // wait for one renewal
		select {
		case <-ctx.Done():
			t.Fatal("no renewal")
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopKeep()
	if err := <-kept; err != nil {
		t.Fatalf("Keep: %v", err)
	}
	checkForeign := func(when string) {
		t.Helper()
		obj := f.Object(leasePath)
		meta := obj["metadata"].(map[string]any)
		if l, _ := meta["labels"].(map[string]any); l["app.kubernetes.io/part-of"] != "shop" {
			t.Errorf("%s: labels = %v, want them kept", when, meta["labels"])
		}
		if a, _ := meta["annotations"].(map[string]any); a["example.com/owner"] != "team-data" {
			t.Errorf("%s: annotations = %v, want them kept", when, meta["annotations"])
		}
		if o, _ := meta["ownerReferences"].([]any); len(o) != 1 {
			t.Errorf("%s: ownerReferences = %v, want them kept", when, meta["ownerReferences"])
		}
		if s := obj["spec"].(map[string]any)["strategy"]; s != "OldestEmulationVersion" {
			t.Errorf("%s: spec.strategy = %v, want it kept", when, s)
		}
	}
	checkForeign("after takeover and renewal")
	if h := f.Holder(leasePath); h != "pod-a" {
		t.Fatalf("holder = %q, want pod-a", h)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	checkForeign("after release")
	if h := f.Holder(leasePath); h != "" {
		t.Fatalf("holder after release = %q, want none", h)
	}
	// The release lets a standby in at once, not after the duration.
	b := kubeLease(t, url, tok, "pod-b")
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	checkForeign("after the next takeover")
}
