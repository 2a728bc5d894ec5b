package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestBackfillNeverSelectsExcludedColumns: with the server's general log
// on, no statement the backfill sends names the excluded column, and its
// rows do not carry it.
func TestBackfillNeverSelectsExcludedColumns(t *testing.T) {
	ctx := context.Background()
	name, db, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), card_number VARCHAR(20))",
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
	name, _, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), card VARCHAR(20))",
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

// TestLiveAdminNeedsToken: with admin.token set, a running ferry answers
// the CLI that sends it and refuses anything else with a bare 401; the
// probes keep working; a condition not allowed is refused by name with
// exit 2 on one line, and an excluded column never reaches the events.
func TestLiveAdminNeedsToken(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(10), card VARCHAR(20))",
		"INSERT INTO orders VALUES (1, 'paid', '4111-1111'), (2, 'open', '5500-0000')")
	dir := t.TempDir()
	const token = "admin-T0ken-for-the-test"
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := receiver.New()
	addr := freeAddr(t)
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r),
		admin: addr + "\n  token: ${file:" + filepath.Join(dir, "admin-token") + "}",
		extra: "    exclude_columns: [\"" + name + ".orders.card\"]"}.yaml(t, dir)
	p := startFerry(t, cfg)
	eventually(t, 30*time.Second, "ferry ready", func() bool {
		code, _, _ := runFerry(t, 10*time.Second, "health", "--ready", "-c", cfg)
		return code == 0
	})

	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || string(body) != "unauthorized\n" {
		t.Fatalf("/status without the token: %d %q, want a bare 401", resp.StatusCode, body)
	}

	code, _, errOut := runFerry(t, time.Minute, "backfill", "-c", cfg, "--source", "db", "--table", name+".orders",
		"--where", "1=1 UNION SELECT card, card, card FROM "+name+".orders", "--detach")
	if code != 2 || !strings.Contains(errOut, "UNION") || strings.Contains(errOut, "Usage:") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Fatalf("backfill with a UNION: exit %d, stderr %q; want exit 2 and one line naming UNION", code, errOut)
	}

	cmd := exec.Command(ferryBin, "backfill", "-c", cfg, "--source", "db", "--table", name+".orders", "--detach")
	cmd.Env = append(os.Environ(), "FERRY_ADMIN_TOKEN=wrong")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "401") || strings.Contains(string(out), token) {
		t.Fatalf("backfill with a wrong FERRY_ADMIN_TOKEN: exit %d, %q; want exit 1 naming the 401", cmd.ProcessState.ExitCode(), out)
	}

	code, _, errOut = runFerry(t, time.Minute, "backfill", "-c", cfg, "--source", "db", "--table", name+".orders", "--where", "status = 'paid'")
	if code != 0 {
		t.Fatalf("backfill with the configured token: exit %d\n%s", code, tailLines(errOut, 5))
	}
	eventually(t, 30*time.Second, "the backfilled row", func() bool { return r.Count() >= 1 })
	if p.stop() != 0 {
		t.Fatalf("ferry run:\n%s", tailLines(p.stderr.String(), 10))
	}
	for _, e := range r.Events() {
		// The whole values: a bare "5500" also matches timestamps and positions.
		if d := string(e.Data()); strings.Contains(d, "4111-1111") || strings.Contains(d, "5500-0000") || strings.Contains(d, `"card"`) {
			t.Fatalf("an event carries the excluded column: %s", e.Data())
		}
	}
	if strings.Contains(p.stderr.String(), token) {
		t.Fatal("the log carries the admin token")
	}
}
