package ha_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/ha"
	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/state"
)

func newLease(t *testing.T, srv *mariadbtest.Server, name string) *ha.MySQLLease {
	t.Helper()
	cfg, err := mysql.ParseDSN(srv.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ha.NewMySQL(ha.MySQLOptions{Server: cfg, Name: name, RenewInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func fencedStore(t *testing.T, srv *mariadbtest.Server, l *ha.MySQLLease, lock string) *state.MySQLCheckpoints {
	t.Helper()
	s, err := state.OpenMySQL(context.Background(), state.MySQLOptions{DB: srv.DB(t, ""), Database: "ferry_ha_test",
		Table: "checkpoints", Fence: l, LockName: lock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDeposedLeaderCannotWriteCheckpoints: replica A leads and saves; its
// lock session dies (as on a partition, the server ends it); B takes over
// and saves; A's late write is refused with ErrFenced and B's checkpoint
// stays. A then notices the loss in Keep.
func TestDeposedLeaderCannotWriteCheckpoints(t *testing.T) {
	srv := mariadbtest.StartT(t, mariadbtest.Options{NoBinlog: true})
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE DATABASE ferry_ha_test"); err != nil {
		t.Fatal(err)
	}
	const lock = "ferry-test"
	a, b := newLease(t, srv, lock), newLease(t, srv, lock)
	storeA, storeB := fencedStore(t, srv, a, lock), fencedStore(t, srv, b, lock)

	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := storeA.SaveCheckpoint(ctx, "db", ferry.Position("a1")); err != nil {
		t.Fatalf("leader's save: %v", err)
	}
	if err := storeB.SaveCheckpoint(ctx, "db", ferry.Position("b0")); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("standby's save: got %v, want ErrFenced", err)
	}

	acquired := make(chan error, 1)
	go func() { acquired <- b.Acquire(ctx) }()
	select {
	case err := <-acquired:
		t.Fatalf("standby acquired a held lease: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	// The server ends A's lock session, as wait_timeout does on a partition.
	killLockHolder(t, srv, lock)
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("standby did not take over after the leader's session ended")
	}
	if err := storeB.SaveCheckpoint(ctx, "db", ferry.Position("b1")); err != nil {
		t.Fatalf("new leader's save: %v", err)
	}
	if err := storeA.SaveCheckpoint(ctx, "db", ferry.Position("a2")); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("deposed leader's save: got %v, want ErrFenced", err)
	}
	if err := storeA.DeleteCheckpoint(ctx, "db"); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("deposed leader's delete: got %v, want ErrFenced", err)
	}
	cp, ok, err := storeA.LoadCheckpoint(ctx, "db")
	if err != nil || !ok || string(cp.Position) != "b1" {
		t.Fatalf("checkpoint = %q, %v, %v; want the new leader's b1", cp.Position, ok, err)
	}
	keepCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.Keep(keepCtx); !errors.Is(err, ha.ErrLost) {
		t.Fatalf("deposed leader's Keep: got %v, want ErrLost", err)
	}
}

func killLockHolder(t *testing.T, srv *mariadbtest.Server, lock string) {
	t.Helper()
	var id int64
	db := srv.DB(t, "")
	if err := db.QueryRow("SELECT IS_USED_LOCK(?)", lock).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("KILL CONNECTION ?", id); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseHandsOverAtOnce: a clean Release lets a waiting standby lead
// without waiting for any timeout, and Keep returns nil when asked to stop.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	srv := mariadbtest.StartT(t, mariadbtest.Options{NoBinlog: true})
	ctx := context.Background()
	a, b := newLease(t, srv, "ferry-release"), newLease(t, srv, "ferry-release")
	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	keepCtx, stopKeep := context.WithCancel(ctx)
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(keepCtx) }()
	acquired := make(chan error, 1)
	go func() { acquired <- b.Acquire(ctx) }()
	time.Sleep(300 * time.Millisecond)
	stopKeep()
	if err := <-kept; err != nil {
		t.Fatalf("Keep after cancel: %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("standby did not take over after Release")
	}
	held, err := b.Held(ctx)
	if err != nil || !held {
		t.Fatalf("new leader Held = %v, %v", held, err)
	}
}
