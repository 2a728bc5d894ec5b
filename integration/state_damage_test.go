package integration

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestDamagedStateFileIsRefused runs the built binary against a state file
// that is empty, truncated, random garbage or bit-flipped: every command
// that reads it (run, checkpoint show, dlq list) refuses with exit 1 and
// one line naming the file, the damage and the way out, and the file is
// byte-identical afterwards. A read-only command on a missing store
// creates nothing.
func TestDamagedStateFileIsRefused(t *testing.T) {
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: binlogPos(t, shared), url: receiver.Start(t, r)}.yaml(t, dir)
	stateDir := filepath.Join(dir, "state")
	path := filepath.Join(stateDir, "ferry.db")

	if code, out, errOut := runFerry(t, 30*time.Second, "checkpoint", "show", "--source", "db", "-c", cfg); code != 0 || !strings.Contains(out, "no checkpoint") {
		t.Fatalf("show without a store: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "-c", cfg); code != 0 || !strings.Contains(out, "0 dead letter(s)") {
		t.Fatalf("dlq list without a store: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Fatalf("read-only commands created %s (%v)", stateDir, err)
	}

	// A healthy store with a checkpoint, from a real run.
	p := startFerry(t, cfg)
	exec1(t, db, "INSERT INTO t VALUES (1)")
	waitEvents(t, r, 1)
	p.stop()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(stateDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.IntN(256))
	}
	flipped := bytes.Clone(good)
	flipped[30] ^= 0x04 // both meta pages: nothing left to fall back on
	flipped[4096+30] ^= 0x04
	for _, tc := range []struct {
		name, what string
		content    []byte
	}{
		{"empty", "is empty", nil},
		{"truncated", "truncated", good[:4096+rng.IntN(4096)]},
		{"garbage", "not a state file", garbage},
		{"bit-flipped", "corrupted", flipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"run"}, {"checkpoint", "show", "--source", "db"}, {"dlq", "list"}} {
				code, _, errOut := runFerry(t, 30*time.Second, append(args, "-c", cfg)...)
				lines := strings.Split(strings.TrimSpace(errOut), "\n")
				last := lines[len(lines)-1]
				if code != 1 || !strings.Contains(last, path) || !strings.Contains(last, tc.what) || !strings.Contains(last, "ferry checkpoint set") {
					t.Errorf("ferry %s: exit %d, last line %q; want exit 1 naming %s, %q and the way out", args[0], code, last, path, tc.what)
				}
				if strings.Contains(errOut, "panic") || strings.Contains(errOut, "SIGBUS") {
					t.Errorf("ferry %s crashed:\n%s", args[0], errOut)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.content) {
					t.Fatalf("ferry %s changed the damaged file", args[0])
				}
			}
		})
	}
}
