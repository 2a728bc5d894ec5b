package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// TestBackfillNeverSelectsExcludedColumns: with the server's general log
// on, no statement the backfill sends names the excluded column, and its
// rows do not carry it.
func TestBackfillNeverSelectsExcludedColumns(t *testing.T) {
	ctx := context.Background()
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), card_number VARCHAR(20))",
		"INSERT INTO orders VALUES (1, 'paid', '4111-1111'), (2, 'open', '5500-0000'), (3, 'paid', '3400-0000')")
	if err := shared.Exec(ctx, "SET GLOBAL log_output = 'TABLE'", "SET GLOBAL general_log = 1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Exec(context.Background(), "SET GLOBAL general_log = 0") })
	src := openSource(t, name+".*", start, func(c *mysql.Config) {
		c.ExcludeColumns = []string{name + ".orders.card_number"}
	})
	table := name + ".orders"
	if err := src.Backfill(ctx, ferry.BackfillRequest{Table: table, Where: "status = 'paid'"}); err != nil {
		t.Fatal(err)
	}
	all := readUntil(t, src, 30*time.Second, func([]ferry.Change) bool { return backfillDone(src, table) })
	var ids []any
	for _, c := range all {
		if c.Op != ferry.OpSnapshot {
			continue
		}
		if slices.Contains(c.After.Columns, "card_number") {
			t.Fatalf("snapshot row carries the excluded column: %v", c.After.Columns)
		}
		ids = append(ids, c.After.Values[0])
	}
	if fmt.Sprint(ids) != "[1 3]" {
		t.Fatalf("backfilled ids %v, want [1 3] (status = 'paid')", ids)
	}
	var reads, leaks int
	err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(argument LIKE '%card_number%'), 0) FROM mysql.general_log
		WHERE argument LIKE ? AND argument NOT LIKE '%information_schema%' AND argument NOT LIKE '%general_log%'`,
		"%`"+name+"`.`orders`%").Scan(&reads, &leaks)
	if err != nil {
		t.Fatal(err)
	}
	if reads == 0 || leaks != 0 {
		t.Fatalf("%d statements read the table, %d of them name the excluded column", reads, leaks)
	}
}

// TestBackfillWhereInjection: conditions that would read the excluded
// column or reach past the condition are refused by name before any
// query runs, as a field error on "where".
func TestBackfillWhereInjection(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), card VARCHAR(20))",
		"INSERT INTO orders VALUES (1, 'paid', '4111-1111')")
	src := openSource(t, name+".*", start, func(c *mysql.Config) { c.ExcludeColumns = []string{name + ".*.card"} })
	for where, want := range map[string]string{
		"1=1 UNION SELECT card, card, card FROM " + name + ".orders": "UNION",
		"card LIKE '4%'":             "column card is excluded",
		"id IN (SELECT 1)":           "subqueries",
		"SLEEP(10) = 0":              "function SLEEP",
		"id = 1; DELETE FROM x":      "not one SQL condition",
		"id = 1 /*!UNION SELECT 1*/": "comments",
	} {
		err := src.Backfill(context.Background(), ferry.BackfillRequest{Table: name + ".orders", Where: where})
		var fe *ferry.FieldError
		if !errors.As(err, &fe) || fe.Field != "where" || !strings.Contains(err.Error(), want) {
			t.Errorf("where %q: %v, want a field error on where naming %q", where, err, want)
		}
	}
}
