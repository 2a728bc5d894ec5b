package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestLeastPrivilegeUser: the grants the README documents, and nothing
// more, are enough to stream, to backfill and to replay: REPLICATION SLAVE,
// REPLICATION CLIENT and SELECT on the captured database only.
func TestLeastPrivilegeUser(t *testing.T) {
	ctx := context.Background()
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'old')")
	const user, password = "ferry_least", "least-Privilege-pw"
	if err := shared.CreateUser(ctx, user, password, "REPLICATION SLAVE, REPLICATION CLIENT ON *.*"); err != nil {
		t.Fatal(err)
	}
	if err := shared.Exec(ctx, fmt.Sprintf("GRANT SELECT ON `%s`.* TO '%s'@'%%'", name, user)); err != nil {
		t.Fatal(err)
	}
	grants := showGrants(t, user)
	for _, g := range grants {
		if strings.Contains(g, "ALL PRIVILEGES") || strings.Contains(g, "SUPER") || strings.Contains(g, "RELOAD") || strings.Contains(g, "INSERT") {
			t.Fatalf("the test user has more than the documented grants: %q", g)
		}
	}
	start := binlogPos(t, shared)
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r), admin: freeAddr(t)}.yaml(t, dir)
	cfg = useAccount(t, cfg, user, password)

	p := startFerry(t, cfg)
	exec1(t, db, "INSERT INTO t VALUES (2, 'new')", "UPDATE t SET v = 'newer' WHERE id = 2")
	eventually(t, 30*time.Second, "2 streamed changes", func() bool { return r.Count() >= 2 })
	code, _, errOut := runFerry(t, time.Minute, "backfill", "-c", cfg, "--source", "db", "--table", name+".t")
	if code != 0 {
		t.Fatalf("backfill with the least-privilege user: exit %d\n%s", code, tailLines(errOut, 5))
	}
	eventually(t, 30*time.Second, "2 snapshot events", func() bool { return r.Count() >= 4 })
	if p.stop() != 0 {
		t.Fatalf("ferry run with the least-privilege user failed:\n%s", tailLines(p.stderr.String(), 10))
	}
	code, _, errOut = runFerry(t, time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start, "--to", "recv")
	if code != 0 {
		t.Fatalf("replay with the least-privilege user: exit %d\n%s", code, tailLines(errOut, 5))
	}
	for _, grant := range grants {
		t.Log(grant)
	}
}

func showGrants(t *testing.T, user string) []string {
	t.Helper()
	rows, err := shared.DB(t, "").Query(fmt.Sprintf("SHOW GRANTS FOR '%s'@'%%'", user))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// useAccount rewrites a pipelineConfig file to log in as user.
func useAccount(t *testing.T, cfg, user, password string) string {
	t.Helper()
	body := readFile(t, cfg)
	body = strings.Replace(body, "    user: root\n", fmt.Sprintf("    user: %s\n    password: %s\n", user, password), 1)
	return writeConfig(t, t.TempDir(), body)
}
