package state

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestJournalAcceptDedupeReadRemove(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	seqs, prior, err := s.Accept(ctx, "hooks", "d-1", [][]byte{[]byte("a"), []byte("b")}, Answer{Status: 202, Body: []byte(`{"id":"x"}`), Time: now.UnixNano()})
	if err != nil || prior != nil || len(seqs) != 2 || seqs[0] != 1 || seqs[1] != 2 {
		t.Fatalf("Accept = %v %v %v", seqs, prior, err)
	}
	seqs, prior, err = s.Accept(ctx, "hooks", "d-1", [][]byte{[]byte("a")}, Answer{Status: 500})
	if err != nil || seqs != nil || prior == nil || prior.Status != 202 || string(prior.Body) != `{"id":"x"}` || fmt.Sprint(prior.Seqs) != "[1 2]" {
		t.Fatalf("duplicate Accept = %v %+v %v", seqs, prior, err)
	}
	if _, _, err := s.Accept(ctx, "hooks", "", [][]byte{[]byte("c")}, Answer{}); err != nil {
		t.Fatal(err)
	}
	entries, _ := s.Entries(ctx, "hooks", 0, 10)
	if len(entries) != 3 || string(entries[2].Record) != "c" || entries[2].Seq != 3 {
		t.Fatalf("Entries = %+v", entries)
	}
	if after, _ := s.Entries(ctx, "hooks", 2, 10); len(after) != 1 || after[0].Seq != 3 {
		t.Fatalf("Entries after 2 = %+v", after)
	}
	if n, err := s.Remove(ctx, "hooks", 2); n != 2 || err != nil {
		t.Fatalf("Remove = %d %v", n, err)
	}
	if d, _ := s.Depth(ctx, "hooks"); d != 1 {
		t.Fatalf("Depth = %d", d)
	}
	// The answer outlives the records, until the dedupe window expires.
	if _, prior, _ := s.Accept(ctx, "hooks", "d-1", [][]byte{[]byte("a")}, Answer{}); prior == nil {
		t.Fatal("delivery id forgotten before expiry")
	}
	if n, _ := s.Expire(ctx, "hooks", now.Add(time.Second)); n != 1 {
		t.Fatalf("Expire = %d", n)
	}
	if _, prior, _ := s.Accept(ctx, "hooks", "d-1", [][]byte{[]byte("a")}, Answer{}); prior != nil {
		t.Fatal("delivery id still known after expiry")
	}
}

func TestJournalConcurrentAcceptsShareCommits(t *testing.T) {
	ctx := context.Background()
	s, _ := Open(t.TempDir(), Options{})
	defer s.Close()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprintf("d-%d", i%100) // every id twice, concurrently
			if _, _, err := s.Accept(ctx, "hooks", id, [][]byte{[]byte(id)}, Answer{Status: 200, Time: time.Now().UnixNano()}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d, _ := s.Depth(ctx, "hooks"); d != 100 {
		t.Fatalf("Depth = %d, want 100 (each delivery id once)", d)
	}
	if st := s.db.Stats(); st.TxStats.GetWrite() >= 200 {
		t.Logf("note: %d write transactions", st.TxStats.GetWrite())
	}
}
