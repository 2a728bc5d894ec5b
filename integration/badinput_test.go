package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// sourceConfig is a config whose only interesting part is the source block.
func sourceConfig(t *testing.T, addr, user, password, include, start string, serverID uint32) string {
	return writeConfig(t, t.TempDir(), fmt.Sprintf(`state: {dir: %s}
admin: {listen: off}
defaults: {to: [out]}
sources:
  db:
    type: mysql
    addr: %s
    user: %s
    password: "%s"
    server_id: %d
    include: [%s]
    start: %s
    startup_timeout: 2s
    connect_timeout: 1s
sinks:
  out: {type: discard}
`, t.TempDir(), addr, user, password, serverID, include, start))
}

// expectStartFailure runs ferry and wants exit code 1 with every fragment
// in one error line.
func expectStartFailure(t *testing.T, cfg string, fragments ...string) string {
	t.Helper()
	code, _, stderr := runFerry(t, 60*time.Second, "run", "-c", cfg)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	var last string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "ferry: ") {
			last = l
		}
	}
	for _, f := range fragments {
		if !strings.Contains(last, f) {
			t.Errorf("final error %q lacks %q", last, f)
		}
	}
	return stderr
}

func TestBadServerSetup(t *testing.T) {
	ctx := context.Background()
	srv := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 3})
	if err := srv.Exec(ctx, "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateUser(ctx, "noreplication", "pw-for-noreplication", "SELECT ON *.*"); err != nil {
		t.Fatal(err)
	}
	if err := srv.CreateUser(ctx, "nomonitor", "pw-for-nomonitor", "SELECT, REPLICATION SLAVE ON *.*"); err != nil {
		t.Fatal(err)
	}
	id := nextServerID()
	t.Run("WrongPassword", func(t *testing.T) {
		stderr := expectStartFailure(t, sourceConfig(t, srv.Addr, "root", "wrong-secret-pw", "shop.orders", "latest", id),
			"access denied for user \"root\"", "check user and password")
		if strings.Contains(stderr, "wrong-secret-pw") {
			t.Fatalf("password printed:\n%s", stderr)
		}
	})
	t.Run("MissingReplicationClient", func(t *testing.T) {
		expectStartFailure(t, sourceConfig(t, srv.Addr, "nomonitor", "pw-for-nomonitor", "shop.orders", "latest", id),
			"lacks a privilege", "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT")
	})
	t.Run("MissingReplicationSlave", func(t *testing.T) {
		if err := srv.Exec(ctx, "GRANT BINLOG MONITOR ON *.* TO 'noreplication'@'%'"); err != nil {
			t.Fatal(err)
		}
		expectStartFailure(t, sourceConfig(t, srv.Addr, "noreplication", "pw-for-noreplication", "shop.orders", "latest", id),
			"may not read the binlog", "GRANT REPLICATION SLAVE")
	})
	t.Run("UnknownIncludedTable", func(t *testing.T) {
		expectStartFailure(t, sourceConfig(t, srv.Addr, "root", "", "shop.orders, shop.nope", "latest", id),
			"include names tables that do not exist", "shop.nope")
	})
	t.Run("ServerIDOfTheServer", func(t *testing.T) {
		expectStartFailure(t, sourceConfig(t, srv.Addr, "root", "", "shop.orders", "latest", 3),
			"server_id 3 is the server's own server_id")
	})
	for _, c := range []struct{ variable, value, fix string }{
		{"binlog_format", "STATEMENT", "SET GLOBAL binlog_format=ROW"},
		{"binlog_row_image", "MINIMAL", "SET GLOBAL binlog_row_image=FULL"},
	} {
		t.Run("Wrong_"+c.variable, func(t *testing.T) {
			if err := srv.Exec(ctx, fmt.Sprintf("SET GLOBAL %s = '%s'", c.variable, c.value)); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = srv.Exec(ctx, "SET GLOBAL binlog_format='ROW'", "SET GLOBAL binlog_row_image='FULL'", "SET GLOBAL binlog_row_metadata='FULL'")
			}()
			expectStartFailure(t, sourceConfig(t, srv.Addr, "root", "", "shop.orders", "latest", id),
				c.variable+" is "+c.value, c.fix)
		})
	}
	// Without column metadata in the binlog, schemas come from
	// information_schema: a user who may not read it is refused, naming
	// the grant.
	t.Run("MinimalMetadataWithoutSelect", func(t *testing.T) {
		if err := srv.CreateUser(ctx, "noselect", "pw-for-noselect", "REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR ON *.*"); err != nil {
			t.Fatal(err)
		}
		if err := srv.Exec(ctx, "SET GLOBAL binlog_row_metadata = 'MINIMAL'"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = srv.Exec(ctx, "SET GLOBAL binlog_row_metadata = 'FULL'") }()
		expectStartFailure(t, sourceConfig(t, srv.Addr, "noselect", "pw-for-noselect", "shop.*", "latest", id),
			"binlog carries no column metadata", "GRANT SELECT ON the captured tables")
	})
	t.Run("PurgedCheckpoint", func(t *testing.T) {
		cfg := sourceConfig(t, srv.Addr, "root", "", "shop.orders", "latest", id)
		code, out, errOut := runFerry(t, 30*time.Second, "checkpoint", "set", "-c", cfg, "--source", "db", "mysql-bin.000001:4")
		if code != 0 {
			t.Fatalf("checkpoint set: %d %s %s", code, out, errOut)
		}
		purgeFirstBinlog(t, srv)
		expectStartFailure(t, cfg, "no longer in the server's binlogs", "ferry checkpoint set")
	})
}

func TestBinlogOff(t *testing.T) {
	srv := mariadbtest.StartT(t, mariadbtest.Options{NoBinlog: true})
	expectStartFailure(t, sourceConfig(t, srv.Addr, "root", "", "mysql.user", "latest", nextServerID()),
		"log_bin is OFF", "--log-bin")
}

func TestUnreachableServer(t *testing.T) {
	start := time.Now()
	expectStartFailure(t, sourceConfig(t, freeAddr(t), "root", "", "a.b", "latest", nextServerID()),
		"cannot connect", "is the server running and reachable?")
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("gave up after %v; startup_timeout is 2s", took)
	}
}

// TestServerIDClash: a second Ferry with a server_id a running one uses
// refuses to start, naming the clash; the running one keeps streaming. A
// restart of the same Ferry after kill -9 (its dead connection still
// registered) is no clash.
func TestServerIDClash(t *testing.T) {
	id := nextServerID()
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: "latest", serverID: id, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	first := startFerry(t, cfg)
	eventually(t, 30*time.Second, "the first Ferry streaming", func() bool {
		return strings.Contains(first.stderr.String(), "streaming binlog")
	})
	second := startFerry(t, sourceConfig(t, shared.Addr, "root", "", "mysql.user", "latest", id))
	if code := second.wait(30 * time.Second); code != 1 ||
		!strings.Contains(second.stderr.String(), fmt.Sprintf("server_id %d is already used by another replica", id)) {
		t.Fatalf("second Ferry: exit %d, stderr:\n%s", code, tailLines(second.stderr.String(), 10))
	}
	exec1(t, db, "INSERT INTO t VALUES (1)")
	waitEvents(t, r, 1)
	if !first.running() {
		t.Fatalf("the running Ferry stopped:\n%s", tailLines(first.stderr.String(), 10))
	}

	first.kill()
	exec1(t, db, "INSERT INTO t VALUES (2)")
	again := startFerry(t, cfg)
	waitEvents(t, r, 2)
	if code := again.stop(); code != 0 {
		t.Fatalf("restart after kill -9: exit %d", code)
	}
}

// TestSinkDownThenUp: the endpoint is unreachable at start and for a while;
// Ferry says so and keeps retrying, and every change arrives once it is up.
func TestSinkDownThenUp(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)")
	addr := freeAddr(t)
	p := startFerry(t, pipelineConfig{server: shared, db: name, start: start, url: "http://" + addr + "/events"}.yaml(t, t.TempDir()))
	for i := range 50 {
		exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d)", i))
	}
	eventually(t, 20*time.Second, "a retry log line naming the sink and the cause", func() bool {
		s := p.stderr.String()
		return strings.Contains(s, "delivery failed; retrying") && strings.Contains(s, "sink=recv") && strings.Contains(s, "connection refused")
	})
	r := receiver.New()
	srv := listenOn(t, addr, r)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources:\n  db: {type: mysql, addr: h, server_id: x}\nsinks: {o: {type: nope}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"validate", "-c", bad}, {"run", "-c", bad}} {
		code, _, stderr := runFerry(t, 30*time.Second, cmd...)
		if code != 2 || !strings.Contains(stderr, bad+":2:41: sources.db.server_id: invalid integer \"x\"") ||
			!strings.Contains(stderr, bad+":3:19: sinks.o.type: unknown sink type \"nope\"") ||
			strings.Contains(stderr, "no sink is configured") {
			t.Errorf("ferry %s: exit %d, stderr:\n%s", cmd[0], code, stderr)
		}
	}
	if code, _, _ := runFerry(t, 10*time.Second, "run"); code != 2 {
		t.Errorf("run without -c: exit %d, want 2", code)
	}
}

// purgeFirstBinlog purges until mysql-bin.000001 is really gone: MariaDB
// keeps a binlog until InnoDB has checkpointed it, and PURGE skips it
// silently until then.
func purgeFirstBinlog(t *testing.T, srv *mariadbtest.Server) {
	t.Helper()
	db := srv.DB(t, "")
	eventually(t, 30*time.Second, "mysql-bin.000001 to be purged", func() bool {
		if _, err := db.Exec("FLUSH BINARY LOGS"); err != nil {
			t.Fatal(err)
		}
		var last string
		rows, err := db.Query("SHOW BINARY LOGS")
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for rows.Next() {
			var name string
			var size any
			if err := rows.Scan(&name, &size); err != nil {
				t.Fatal(err)
			}
			files = append(files, name)
			last = name
		}
		rows.Close()
		if files[0] != "mysql-bin.000001" {
			return true
		}
		_, _ = db.Exec("PURGE BINARY LOGS TO '" + last + "'")
		time.Sleep(200 * time.Millisecond)
		return false
	})
}
