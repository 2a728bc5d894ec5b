package ha_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/state"
)

// TestDeposedLeaderCannotWriteSchemaHistory: the schema history in the
// shared table is fenced like the checkpoint. A standby's write and a
// deposed leader's late write are refused with ErrFenced and change
// nothing; the new leader's history is what every replica reads; a
// Kubernetes-style guard that fails refuses too.
func TestDeposedLeaderCannotWriteSchemaHistory(t *testing.T) {
	srv := mariadbtest.StartT(t, mariadbtest.Options{NoBinlog: true})
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE DATABASE ferry_ha_test"); err != nil {
		t.Fatal(err)
	}
	const lock = "ferry-schema-test"
	a, b := newLease(t, srv, lock), newLease(t, srv, lock)
	storeA, storeB := fencedStore(t, srv, a, lock), fencedStore(t, srv, b, lock)
	if got := storeA.SchemaTable(); got != "`ferry_ha_test`.`checkpoints_schema_history`" {
		t.Errorf("schema table %s", got)
	}
	// A record key holds NUL bytes and a table name, as the mysql source's do.
	key := "v\x00shop.orders\x00mysql-bin.000001\x000000000400"

	if err := a.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := storeA.SaveSchema(ctx, "db", key, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("leader's save: %v", err)
	}
	if err := storeA.SaveSchema(ctx, "db", key, []byte(`{"a":1}`)); err != nil {
		t.Fatalf("leader's save of the same record again: %v", err)
	}
	if err := storeB.SaveSchema(ctx, "db", key, []byte(`{"b":0}`)); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("standby's save: got %v, want ErrFenced", err)
	}
	if err := storeB.SaveSchema(ctx, "db", "base", []byte(`{"b":0}`)); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("standby's save of a new record: got %v, want ErrFenced", err)
	}

	killLockHolder(t, srv, lock)
	acquireCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Acquire(acquireCtx); err != nil {
		t.Fatalf("standby did not take over: %v", err)
	}
	recs, err := storeB.SchemaRecords(ctx, "db")
	if err != nil || len(recs) != 1 || string(recs[key]) != `{"a":1}` {
		t.Fatalf("the new leader reads %q, %v; want the predecessor's record", recs, err)
	}
	if err := storeB.SaveSchema(ctx, "db", key, []byte(`{"b":1}`)); err != nil {
		t.Fatalf("new leader's save: %v", err)
	}
	if err := storeA.SaveSchema(ctx, "db", key, []byte(`{"a":2}`)); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("deposed leader's save: got %v, want ErrFenced", err)
	}
	if err := storeA.SaveSchema(ctx, "db", "base", []byte(`{"a":2}`)); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("deposed leader's save of a new record: got %v, want ErrFenced", err)
	}
	recs, err = storeA.SchemaRecords(ctx, "db")
	if err != nil || len(recs) != 1 || string(recs[key]) != `{"b":1}` {
		t.Fatalf("history = %q, %v; want only the new leader's record", recs, err)
	}
	if other, err := storeA.SchemaRecords(ctx, "other"); err != nil || len(other) != 0 {
		t.Fatalf("another source's history = %q, %v; want none", other, err)
	}

	expired := errors.New("lease about to expire")
	guarded, err := state.OpenMySQL(ctx, state.MySQLOptions{DB: srv.DB(t, ""), Database: "ferry_ha_test",
		Table: "checkpoints", Guard: func() error { return expired }})
	if err != nil {
		t.Fatal(err)
	}
	if err := guarded.SaveSchema(ctx, "db", key, []byte(`{"k":1}`)); !errors.Is(err, state.ErrFenced) || !errors.Is(err, expired) {
		t.Fatalf("guarded save with a stale lease: got %v, want ErrFenced naming the guard", err)
	}
}
