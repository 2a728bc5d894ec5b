package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServers starts a binlog server and a server without binlog side by
// side and checks each one's settings.
func TestServers(t *testing.T) {
	servers := make(chan *Server, 2)
	t.Run("group", func(t *testing.T) {
		t.Run("binlog", func(t *testing.T) {
			t.Parallel()
			s := StartT(t, Options{ServerID: 7})
			servers <- s
			var logBin, id int
			var format, image, meta, charset string
			err := s.DB(t, "").QueryRow("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@server_id, @@character_set_server").
				Scan(&logBin, &format, &image, &meta, &id, &charset)
			if err != nil {
				t.Fatal(err)
			}
			if logBin != 1 || format != "ROW" || image != "FULL" || meta != "FULL" || id != 7 || charset != "utf8mb4" {
				t.Fatalf("log_bin=%d binlog_format=%s binlog_row_image=%s binlog_row_metadata=%s server_id=%d character_set_server=%s",
					logBin, format, image, meta, id, charset)
			}
			// The binlog files are where Ferry expects them.
			var file string
			var pos uint64
			var x, y, z any
			if err := s.DB(t, "").QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &x, &y); err != nil {
				if err2 := s.DB(t, "").QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &x, &y, &z); err2 != nil {
					t.Fatalf("SHOW MASTER STATUS: %v / %v", err, err2)
				}
			}
			if !strings.HasPrefix(file, "mysql-bin.") {
				t.Fatalf("binlog file %q", file)
			}
			if _, err := os.Stat(filepath.Join(s.DataDir, file)); err != nil {
				t.Fatal(err)
			}
			testCreateUser(t, s)
		})
		t.Run("nobinlog", func(t *testing.T) {
			t.Parallel()
			s := StartT(t, Options{NoBinlog: true, ExtraArgs: []string{"--binlog-row-metadata=MINIMAL"}})
			servers <- s
			var logBin, id int
			var meta string
			if err := s.DB(t, "").QueryRow("SELECT @@log_bin, @@server_id, @@binlog_row_metadata").Scan(&logBin, &id, &meta); err != nil {
				t.Fatal(err)
			}
			if logBin != 0 || id != 1 || meta != "MINIMAL" {
				t.Fatalf("log_bin=%d server_id=%d binlog_row_metadata=%s, want 0, 1 (default), MINIMAL (ExtraArgs)", logBin, id, meta)
			}
		})
	})
	close(servers)
	var addrs, dirs []string
	for s := range servers {
		addrs, dirs = append(addrs, s.Addr), append(dirs, s.DataDir)
		if _, err := os.Stat(s.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind after the test (err %v)", s.Dir, err)
		}
	}
	if len(addrs) == 2 && (addrs[0] == addrs[1] || dirs[0] == dirs[1]) {
		t.Fatalf("parallel servers share %v %v", addrs, dirs)
	}
}

func testCreateUser(t *testing.T, s *Server) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, "ferry", "it's s3cret", "REPLICATION SLAVE, REPLICATION CLIENT ON *.*", "SELECT ON *.*"); err != nil {
		t.Fatal(err)
	}
	dsn := fmt.Sprintf("ferry:%s@tcp(%s)/", "it's s3cret", s.Addr)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var grants string
	if err := db.QueryRow("SHOW GRANTS").Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(grants, "REPLICATION SLAVE") || !strings.Contains(grants, "SELECT") {
		t.Fatalf("grants: %s", grants)
	}
	if _, err := db.Exec("CREATE DATABASE nope"); err == nil {
		t.Fatal("the user may create databases")
	}
}

// TestKillRestartKeepsData crashes the server, restarts it, stops it
// gracefully keeping its data, restarts it again, and finally removes it.
func TestKillRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	count := func(want int) {
		t.Helper()
		var n int
		if err := s.DB(t, "d").QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != want {
			t.Fatalf("rows=%d err=%v, want %d", n, err, want)
		}
	}
	if err := s.Exec(ctx, "CREATE DATABASE d", "USE d", "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err == nil {
		t.Fatal("Kill of a dead server succeeded")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr != addr {
		t.Fatalf("restarted on %s, was %s", s.Addr, addr)
	}
	count(1)
	if err := s.Restart(ctx); err == nil {
		t.Fatal("Restart of a running server succeeded")
	}
	if err := s.Exec(ctx, "INSERT INTO d.t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := s.StopKeep(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	count(2)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stop left %s behind (err %v)", s.DataDir, err)
	}
	if err := s.Restart(ctx); err == nil || !strings.Contains(err.Error(), "datadir gone") {
		t.Fatalf("Restart after Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// TestPortTaken: a fixed port that is taken fails with mariadbd's reason and
// leaves nothing behind. It also covers initializing without the template.
func TestPortTaken(t *testing.T) {
	t.Setenv("MARIADBTEST_NO_TEMPLATE", "1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	base := t.TempDir()
	_, err = Start(context.Background(), Options{Port: ln.Addr().(*net.TCPAddr).Port, BaseDir: base, Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("err = %v, want the bind error from the error log", err)
	}
	t.Log(err)
	if left, _ := os.ReadDir(base); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

func TestMissingBinaryMessage(t *testing.T) {
	_, err := FindBinary("mariadbd-does-not-exist")
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y mariadb-server") {
		t.Fatalf("err = %v", err)
	}
}

// TestServerDiesWithTestProcess starts a server from a child test process,
// SIGKILLs the child and checks that mariadbd went with it.
func TestServerDiesWithTestProcess(t *testing.T) {
	if os.Getenv("MARIADBTEST_CHILD") == "1" {
		s, err := Start(context.Background(), Options{BaseDir: os.Getenv("MARIADBTEST_BASE")})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Printf("pid %d %s\n", s.cmdPid(), s.Dir)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	base := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTestProcess$", "-test.count=1")
	child.Env = append(os.Environ(), "MARIADBTEST_CHILD=1", "MARIADBTEST_BASE="+base)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	if _, err := fmt.Fscanf(out, "pid %d %s\n", &pid, &dir); err != nil {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child: %v", err)
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("mariadbd %d outlived the process that started it", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// mariadbd was a child of the killed process, reaped by init (or our
	// subreaper): its pid may linger as a zombie only briefly.
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && len(b) > 0 {
		t.Fatalf("mariadbd %d still running: %q", pid, b)
	}
	_ = os.RemoveAll(dir)
}
