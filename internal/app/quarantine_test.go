package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/state"
)

// quarantinedRow is a dead letter's event as the mysql source writes it.
func quarantinedRow(t *testing.T, table string, pos uint32) mysql.QuarantinedRow {
	t.Helper()
	ev, err := json.Marshal(map[string]any{"db": "shop", "table": table, "op": "create", "file": "mysql-bin.000002",
		"pos": pos, "tx": "0-1-9", "images": [][]any{{1, "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	return mysql.QuarantinedRow{Source: "db", EventID: fmt.Sprintf("0-1-9#%d", pos), Reason: "quarantined", Event: ev}
}

// TestQuarantineLetters: `dlq replay` refuses the undecoded rows of a
// quarantined table and keeps them; a replay removes exactly the letters
// of its source, tables and range.
func TestQuarantineLetters(t *testing.T) {
	ctx := context.Background()
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rows := []mysql.QuarantinedRow{quarantinedRow(t, "orders", 500), quarantinedRow(t, "orders", 900),
		quarantinedRow(t, "customers", 600)}
	other := quarantinedRow(t, "orders", 550)
	other.Source = "db2"
	if err := (quarantineLetters{store}).QuarantineRows(ctx, append(rows, other)); err != nil {
		t.Fatal(err)
	}
	letters, err := ListDeadLetters(ctx, store, "")
	if err != nil || len(letters) != 4 {
		t.Fatalf("letters %d, %v", len(letters), err)
	}
	out, err := ReplayDeadLetters(ctx, nil, store, letters, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || out.Replayed != 0 || len(out.Failed) != 4 ||
		out.Failed[0].Error != errQuarantinedLetter.Error() {
		t.Fatalf("dlq replay of quarantined rows: %+v, %v; want all refused", out, err)
	}

	n, err := DropReplayedQuarantine(ctx, store, "db", []string{"shop.orders"}, "mysql-bin.000002:400", "mysql-bin.000002:800 gtid=0-1-12")
	if err != nil || n != 1 {
		t.Fatalf("dropped %d, %v; want the one letter of db's shop.orders in the range", n, err)
	}
	left, err := ListDeadLetters(ctx, store, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range left {
		ids = append(ids, d.Source+"/"+d.EventID)
	}
	if fmt.Sprint(ids) != "[db/0-1-9#900 db/0-1-9#600 db2/0-1-9#550]" {
		t.Errorf("left %v", ids)
	}
}
