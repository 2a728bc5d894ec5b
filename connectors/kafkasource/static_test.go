package kafkasource

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStaticMemberRestartTakesOverAtOnce: two members share a group, each
// with its own group_instance_id. One disappears without leaving (as
// kill -9 would) and comes back under the same id: the broker replaces the
// dead member by the new process at its join, so the group never waits
// for the dead session (a minute here, longer than the test's deadline)
// and the new process reads the old member's partition. Without the
// instance id the restarted process joins as a third member, the dead one
// stays listed until its session expires, and the rebalance waits for it.
func TestStaticMemberRestartTakesOverAtOnce(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(2, "orders"))
	brokers := c.ListenAddrs()
	static := func(id string) func(*Config) {
		return func(cfg *Config) { cfg.GroupInstanceID = id; cfg.SessionTimeout = time.Minute }
	}
	a := newSource(t, brokers, static("ferry-a"))
	openSource(t, a, nil)
	b := newSource(t, brokers, static("ferry-b"))
	openSource(t, b, nil)
	for deadline := time.Now().Add(30 * time.Second); len(a.offs.assigned()["orders"]) != 1 || len(b.offs.assigned()["orders"]) != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("no assignment: a holds %v, b holds %v", a.offs.assigned(), b.offs.assigned())
		}
		_, _ = tryRead(a)
		_, _ = tryRead(b)
	}
	aMember, _ := a.client.GroupMetadata()
	bMember, _ := b.client.GroupMetadata()
	if !strings.HasPrefix(aMember, "ferry-a-") || !strings.HasPrefix(bMember, "ferry-b-") {
		t.Fatalf("member ids %q and %q do not carry the instance ids", aMember, bMember)
	}
	aPart, bPart := a.offs.assigned()["orders"][0], b.offs.assigned()["orders"][0]

	// The crash: a's client goes away. A static member's client sends no
	// LeaveGroup, so the broker still counts it, exactly as after kill -9.
	a.client.Close()
	if m := groupMembers(t, brokers); len(m) != 2 || !m[aMember] {
		t.Fatalf("after the crash the group lists %v, want the dead %s still in it", m, aMember)
	}
	restarted := newSource(t, brokers, static("ferry-a"))
	openSource(t, restarted, nil)
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Partition: aPart, Value: []byte(`{"after":"restart"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got string
	for deadline := time.Now().Add(30 * time.Second); got == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted member read nothing of partition %d; it holds %v, the group lists %v", aPart, restarted.offs.assigned(), groupMembers(t, brokers))
		}
		if bt, err := tryRead(restarted); err == nil && len(bt.Changes) > 0 {
			got = bt.Changes[0].ID
		}
		_, _ = tryRead(b)
	}
	if want := fmt.Sprintf("orders/%d/0", aPart); got != want {
		t.Fatalf("the restarted member read %s first, want %s", got, want)
	}
	rMember, _ := restarted.client.GroupMetadata()
	m := groupMembers(t, brokers)
	if len(m) != 2 || m[aMember] || !m[rMember] || !m[bMember] || !strings.HasPrefix(rMember, "ferry-a-") {
		t.Fatalf("the group lists %v: want %s replaced by %s beside %s", m, aMember, rMember, bMember)
	}
	if held := b.offs.assigned()["orders"]; len(held) != 1 || held[0] != bPart {
		t.Fatalf("the other member holds %v, held partition %d", held, bPart)
	}
}

// groupMembers lists the member ids of group ferry-test.
func groupMembers(t *testing.T, brokers []string) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{"ferry-test"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe group ferry-test: %v", err)
	}
	out := map[string]bool{}
	for _, m := range resp.Groups[0].Members {
		out[m.MemberID] = true
	}
	return out
}

// TestSessionTimeoutIsValidated: the documented default, and a session
// timeout no broker accepts or an instance id with stray spaces (a
// templating slip) are refused naming the key.
func TestSessionTimeoutIsValidated(t *testing.T) {
	cfg := DefaultConfig()
	if cfg.SessionTimeout != 10*time.Second {
		t.Fatalf("default session_timeout = %v, want the documented 10s", cfg.SessionTimeout)
	}
	cfg.Brokers, cfg.Topics, cfg.Group = []string{"127.0.0.1:1"}, []string{"orders"}, "g"
	cfg.SessionTimeout = 500 * time.Millisecond
	cfg.GroupInstanceID = " pod-0"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "session_timeout") || !strings.Contains(err.Error(), "group_instance_id") {
		t.Fatalf("Validate = %v, want session_timeout and group_instance_id named", err)
	}
}
