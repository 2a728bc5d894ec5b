package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestServerCrashAndRestart kills MariaDB under a running Ferry; Ferry
// reconnects from its last transaction boundary and nothing is lost.
func TestServerCrashAndRestart(t *testing.T) {
	ctx := context.Background()
	srv, start := ownServer(t)
	r := receiver.New()
	p := startFerry(t, pipelineConfig{server: srv, db: "d", start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir()))
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			if err := srv.Exec(ctx, fmt.Sprintf("INSERT INTO d.t VALUES (%d)", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, 100)
	waitEvents(t, r, 100)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "ferry to notice the lost connection", func() bool {
		return strings.Contains(p.stderr.String(), "binlog stream interrupted; reconnecting")
	})
	time.Sleep(1500 * time.Millisecond) // a reconnect attempt or two against the dead server
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	insert(100, 200)
	events := waitEvents(t, r, 200)
	if distinct(events) != 200 || !p.running() {
		t.Fatalf("%d distinct events after the restart (want 200), ferry running: %v", distinct(events), p.running())
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestSecretsNeverLogged runs a full pipeline at debug level with a MySQL
// password and an HTTP header secret from the environment, through a
// receiver outage, and greps everything Ferry printed.
func TestSecretsNeverLogged(t *testing.T) {
	ctx := context.Background()
	const dbPassword, token = "Db-Pa55w0rd-xyzzy", "tok-9f8e7d6c5b4a"
	if err := shared.CreateUser(ctx, "ferry_secret", dbPassword, "REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.*"); err != nil {
		t.Fatal(err)
	}
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)")
	r := receiver.New()
	r.FailNext(1, 401, "") // the first event is rejected (dead-lettered) and logged with the response
	url := receiver.Start(t, r)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: off}
defaults: {to: [recv, out]}
sources:
  db:
    type: mysql
    addr: %s
    user: ferry_secret
    password: ${DB_PASSWORD}
    server_id: %d
    include: ["%s.*"]
    start: %s
sinks:
  recv:
    type: http
    url: %s
    headers: {Authorization: "Bearer ${API_TOKEN}"}
    retry: {initial_backoff: 10ms, max_backoff: 50ms, max_attempts: 2}
  out: {type: stdout}
`, dir, shared.Addr, nextServerID(), name, start, url))
	p := startFerry(t, cfg, "DB_PASSWORD="+dbPassword, "API_TOKEN="+token)
	exec1(t, db, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	eventually(t, 20*time.Second, "the second event", func() bool {
		return r.Count() >= 1 && strings.Count(p.stdout.String(), "\n") >= 2
	})
	p.stop()
	for _, out := range []string{p.stderr.String(), p.stdout.String()} {
		for _, secret := range []string{dbPassword, token} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q printed:\n%s", secret, out)
			}
		}
	}
	if !strings.Contains(p.stderr.String(), "401 Unauthorized") {
		t.Fatalf("the rejected request was not logged:\n%s", tailLines(p.stderr.String(), 20))
	}
	if got := r.Requests(); len(got) == 0 || got[0].Header.Get("Authorization") != "Bearer "+token {
		t.Fatal("the header secret did not reach the endpoint")
	}
}
