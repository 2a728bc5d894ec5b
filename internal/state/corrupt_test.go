package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthyStore writes a store with checkpoints, dead letters and a journal,
// large enough for multi-level trees, and returns its file's bytes.
func healthyStore(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		if err := s.SaveCheckpoint(ctx, fmt.Sprintf("src%d", i), []byte(fmt.Sprintf("mysql-bin.%06d:%d", i, i*100))); err != nil {
			t.Fatal(err)
		}
	}
	letters := make([]DeadLetter, 300)
	for i := range letters {
		letters[i] = DeadLetter{Source: "db", Sink: "hook", EventID: fmt.Sprint(i), Event: []byte(`{"id":"` + strings.Repeat("x", i%90) + `"}`), Error: "400"}
	}
	if err := s.PutDeadLetters(ctx, letters); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Accept(ctx, "hooks", "d1", [][]byte{[]byte("r1"), []byte("r2")}, Answer{Status: 202}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	// bbolt preallocates far past its last page; the tests copy the file
	// hundreds of times, so keep only the pages in use.
	meta, err := newestMeta(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return b[:int(meta.hwm)*int(meta.pageSize)]
}

// openDamaged writes content as a state file, opens it (read-only when ro)
// and reads everything back. It returns Open's error; the file must be
// byte-identical afterwards whenever Open refused it or ro was set.
func openDamaged(t *testing.T, content []byte, ro bool) error {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{ReadOnly: ro, LockTimeout: 100 * time.Millisecond})
	if err == nil {
		ctx := context.Background()
		_, _, _ = s.LoadCheckpoint(ctx, "src3")
		_ = s.DeadLetters(ctx, func(DeadLetter) error { return nil })
		_, _ = s.Entries(ctx, "hooks", 0, 10)
		if !ro {
			_ = s.SaveCheckpoint(ctx, "src3", []byte("after"))
		}
		_ = s.Close()
	}
	if err != nil || ro {
		after, rerr := os.ReadFile(path)
		if rerr != nil || !bytes.Equal(after, content) {
			t.Fatalf("the state file changed (open error: %v)", err)
		}
	}
	return err
}

func wantCorrupt(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	msg := err.Error()
	for _, part := range []string{FileName, what, "ferry checkpoint set"} {
		if !strings.Contains(msg, part) {
			t.Errorf("error %q does not mention %q", msg, part)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
}

func TestDamagedStoreIsRefused(t *testing.T) {
	good := healthyStore(t)
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, len(good))
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	meta, err := newestMeta(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	used := int(meta.hwm) * int(meta.pageSize) // bbolt grows the file past it
	bothMetas := bytes.Clone(good)
	bothMetas[30] ^= 0x10   // meta page 0, inside its checksummed part
	bothMetas[4096+30] ^= 1 // meta page 1
	for _, tc := range []struct {
		name, what string
		content    []byte
	}{
		{"empty", "empty", nil},
		{"one byte", "truncated", good[:1]},
		{"metas only", "truncated", good[:8192]},
		{"half", "truncated", good[:used/2]},
		{"last page missing", "truncated", good[:used-4096]},
		{"garbage", "not a state file", garbage},
		{"both meta pages flipped", "corrupted", bothMetas},
	} {
		for _, ro := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/readonly=%v", tc.name, ro), func(t *testing.T) {
				wantCorrupt(t, openDamaged(t, tc.content, ro), tc.what)
			})
		}
	}
}

// TestBitFlippedStoreNeverCrashes flips random bits of a healthy store: each
// damaged file is refused (untouched) or opens and reads without a panic or
// SIGBUS. Flips that break the tree's structure must be refused.
func TestBitFlippedStoreNeverCrashes(t *testing.T) {
	good := healthyStore(t)
	meta, err := newestMeta(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	pages := int(meta.hwm) // flips past the used pages change nothing
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (FERRY_STATE_FLIP_SEED replays)", seed)
	if s := os.Getenv("FERRY_STATE_FLIP_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	refused := 0
	const flips = 200
	for i := 0; i < flips; i++ {
		bad := bytes.Clone(good)
		// Aim at page headers and element tables half of the time: that is
		// where bbolt itself panics.
		off := rng.IntN(pages * 4096)
		if i%2 == 0 {
			off = rng.IntN(pages)*4096 + rng.IntN(64)
		}
		bad[off] ^= 1 << rng.IntN(8)
		// Read-write opens (fsync) one time in four keep the run short.
		if err := openDamaged(t, bad, i%4 != 0); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip at %d: Open = %v, want ErrCorrupt", off, err)
			}
			refused++
		}
	}
	t.Logf("%d of %d flipped files refused, the others opened and read", refused, flips)
}

func TestReadOnlyOpenCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, err := Open(dir, Options{ReadOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("read-only Open of a missing store = %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open created %s: %v", dir, err)
	}
}

func TestStoreIsOwnerOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, healthyStore(t), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
}

// BenchmarkOpenChecksTheFile measures Open on a store of about 50 MB (the
// page-by-page check runs on every Open).
func BenchmarkOpenChecksTheFile(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	payload := []byte(`{"id":"` + strings.Repeat("x", 400) + `"}`)
	for range 100 {
		letters := make([]DeadLetter, 1000)
		for i := range letters {
			letters[i] = DeadLetter{Source: "db", Sink: "hook", EventID: fmt.Sprint(i), Event: payload, Error: "400"}
		}
		if err := s.PutDeadLetters(ctx, letters); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.Close()
	fi, _ := os.Stat(filepath.Join(dir, FileName))
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MB")
}
