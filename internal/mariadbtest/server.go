// Package mariadbtest starts disposable MariaDB servers for tests,
// benchmarks and the quick start: a fresh datadir under a temporary
// directory, a private loopback port, root with an empty password over TCP,
// and the binlog settings Ferry needs (log_bin, ROW format, FULL row image
// and metadata). Tests must never rely on the machine's own server on 3306.
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
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver
)

// Options configure a server.
type Options struct {
	Port      int    // 0 picks a free loopback port
	ServerID  uint32 // default 1
	NoBinlog  bool   // start without binary logging (to test refusals)
	ExtraArgs []string
	BaseDir   string // parent of the datadir; default os.TempDir()
	// Dir, when set, is the server's directory, reused if it already holds a
	// datadir (the quick start keeps its data between runs).
	Dir  string
	Logf func(format string, args ...any)
}

// Server is a running (or stopped) disposable server.
type Server struct {
	Host    string
	Port    int
	Addr    string
	Dir     string
	DataDir string
	Socket  string

	opts Options
	cmd  *exec.Cmd
	done chan error
}

// Binaries the package needs.
var binaries = []string{"mariadbd", "mariadb-install-db"}

// lookBinary finds a MariaDB binary on PATH or in /usr/sbin.
func lookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: install MariaDB (apt-get install -y mariadb-server)", name)
}

// Start initializes a datadir and starts the server, waiting until it
// answers queries.
func Start(ctx context.Context, opts Options) (*Server, error) {
	for _, b := range binaries {
		if _, err := lookBinary(b); err != nil {
			return nil, err
		}
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Server{Host: "127.0.0.1", opts: opts}
	if err := s.prepareDir(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		err := s.start(ctx)
		if err == nil {
			return s, nil
		}
		// A port picked free can be taken before mariadbd binds it.
		if opts.Port != 0 || attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			return nil, err
		}
	}
}

func (s *Server) prepareDir() error {
	s.Dir = s.opts.Dir
	if s.Dir == "" {
		dir, err := os.MkdirTemp(s.opts.BaseDir, "ferry-mariadb-")
		if err != nil {
			return fmt.Errorf("create server directory: %w", err)
		}
		s.Dir = dir
	}
	s.DataDir = filepath.Join(s.Dir, "data")
	s.Socket = filepath.Join(s.Dir, "mysqld.sock")
	if _, err := os.Stat(filepath.Join(s.DataDir, "mysql")); err == nil {
		return nil // reuse an initialized datadir
	}
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return fmt.Errorf("create datadir: %w", err)
	}
	installDB, _ := lookBinary("mariadb-install-db")
	start := time.Now()
	out, err := exec.Command(installDB, "--no-defaults", "--user=root", "--datadir="+s.DataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadb-install-db: %w: %s", err, tail(string(out), 800))
	}
	s.opts.Logf("mariadbtest: initialized %s in %v", s.DataDir, time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Server) args() []string {
	a := []string{"--no-defaults", "--user=root", "--datadir=" + s.DataDir, "--socket=" + s.Socket,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(s.Dir, "error.log"), "--server-id=" + strconv.FormatUint(uint64(s.opts.ServerID), 10),
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M", "--skip-name-resolve",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci", "--max-connections=200"}
	if !s.opts.NoBinlog {
		a = append(a, "--log-bin=mysql-bin", "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL")
	}
	return append(a, s.opts.ExtraArgs...)
}

func (s *Server) start(ctx context.Context) error {
	s.Port = s.opts.Port
	if s.Port == 0 {
		p, err := freePort()
		if err != nil {
			return err
		}
		s.Port = p
	}
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	_ = os.Remove(filepath.Join(s.Dir, "error.log"))
	mariadbd, _ := lookBinary("mariadbd")
	cmd := exec.Command(mariadbd, s.args()...)
	// Own process group, and killed with the test process so a crashed test
	// does not leave servers behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	started := time.Now()
	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("mariadbd on %s did not become ready: %w; error.log: %s", s.Addr, err, s.errorLogTail())
	}
	s.opts.Logf("mariadbtest: %s ready in %v (datadir %s)", s.Addr, time.Since(started).Round(time.Millisecond), s.DataDir)
	return nil
}

func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("mariadbd exited: %v", err)
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("last ping: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) errorLogTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	return tail(string(b), 1500)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// DSN returns a go-sql-driver DSN for root over TCP.
func (s *Server) DSN(db string) string {
	return "root@tcp(" + s.Addr + ")/" + db + "?multiStatements=true&interpolateParams=true&charset=utf8mb4"
}

// Exec runs statements as root.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("%s: %w", tail(st, 200), err)
		}
	}
	return nil
}

// CreateUser creates user@'%' with a password and the given grants, e.g.
// "REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.*".
func (s *Server) CreateUser(ctx context.Context, user, password string, grants ...string) error {
	stmts := []string{fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password)}
	for _, g := range grants {
		stmts = append(stmts, fmt.Sprintf("GRANT %s TO '%s'@'%%'", g, user))
	}
	return s.Exec(ctx, stmts...)
}

// Stop shuts the server down gracefully and removes its directory.
func (s *Server) Stop() error {
	err := s.StopKeep()
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// StopKeep shuts the server down gracefully, keeping its data.
func (s *Server) StopKeep() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Kill stops the server with SIGKILL, as a crash would, keeping its data.
func (s *Server) Kill() error {
	if s.cmd == nil {
		return errors.New("server is not running")
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	return nil
}

// Restart starts a stopped or killed server again on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("server is running")
	}
	s.opts.Port = s.Port
	return s.start(ctx)
}
