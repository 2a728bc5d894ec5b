package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

func TestCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok, err := s.LoadCheckpoint(ctx, "db"); ok || err != nil {
		t.Fatalf("LoadCheckpoint on empty store = %v, %v", ok, err)
	}
	if err := s.SaveCheckpoint(ctx, "db", []byte("pos-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "db", []byte("pos-2")); err != nil {
		t.Fatal(err)
	}
	cp, ok, err := s.LoadCheckpoint(ctx, "db")
	if err != nil || !ok || string(cp.Position) != "pos-2" || time.Since(cp.SavedAt) > time.Minute {
		t.Fatalf("LoadCheckpoint = %q %v %v %v", cp.Position, cp.SavedAt, ok, err)
	}
	if err := s.DeleteCheckpoint(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LoadCheckpoint(ctx, "db"); ok {
		t.Fatal("checkpoint still present after delete")
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := []DeadLetter{{Sink: "a", EventID: "1", Event: []byte(`{"id":"1"}`), Error: "400"}, {Sink: "b", EventID: "2", Event: []byte(`{}`)}}
	if err := s.PutDeadLetters(ctx, in); err != nil {
		t.Fatal(err)
	}
	var got []DeadLetter
	_ = s.DeadLetters(ctx, func(d DeadLetter) error { got = append(got, d); return nil })
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 || got[0].Error != "400" || string(got[0].Event) != `{"id":"1"}` {
		t.Fatalf("DeadLetters = %+v", got)
	}
	if err := s.DeleteDeadLetters(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got = nil
	_ = s.DeadLetters(ctx, func(d DeadLetter) error { got = append(got, d); return nil })
	if len(got) != 1 || got[0].EventID != "2" {
		t.Fatalf("after delete: %+v", got)
	}
}

// TestCheckpointSurvivesKill kills a process that saves checkpoints as fast as
// it can, at a random instant, and checks the store still opens and holds one
// of the values that process committed.
func TestCheckpointSurvivesKill(t *testing.T) {
	if os.Getenv("FERRY_STATE_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	dir := t.TempDir()
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointSurvivesKill$")
		cmd.Env = append(os.Environ(), "FERRY_STATE_CRASH_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		if _, err := out.Read(buf); err != nil { // the child has committed at least once
			t.Fatalf("child: %v", err)
		}
		time.Sleep(time.Duration(10+round*17) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		cp, ok, err := s.LoadCheckpoint(context.Background(), "src")
		_ = s.Close()
		if err != nil || !ok {
			t.Fatalf("round %d: checkpoint unreadable after kill: ok=%v err=%v", round, ok, err)
		}
		if n, err := strconv.Atoi(string(cp.Position)); err != nil || n < 1 {
			t.Fatalf("round %d: checkpoint %q is not a committed value", round, cp.Position)
		}
	}
}

func crashChild() {
	s, err := Open(os.Getenv("FERRY_STATE_CRASH_CHILD"), Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := 1; ; i++ {
		if err := s.SaveCheckpoint(context.Background(), "src", []byte(strconv.Itoa(i))); err != nil {
			os.Exit(4)
		}
		if i == 1 {
			os.Stdout.Write([]byte("x"))
		}
	}
}
