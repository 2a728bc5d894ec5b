package mariadbtest

import (
	"bytes"
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
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
)

// DefaultStartTimeout bounds how long Start and Restart wait for a server to
// answer when Options.StartTimeout is zero.
const DefaultStartTimeout = 60 * time.Second

// Options configure a server. The zero value is a binlog-enabled server with
// server_id 1 on a free loopback port in a new directory under os.TempDir().
type Options struct {
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// ServerID is @@server_id; 0 means 1.
	ServerID uint32
	// NoBinlog starts the server without binary logging (to test that Ferry
	// refuses such a source). By default the server runs with --log-bin
	// --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL.
	NoBinlog bool
	// ExtraArgs are appended to the mariadbd command line and so override the
	// defaults, e.g. "--binlog-row-metadata=MINIMAL".
	ExtraArgs []string
	// BaseDir is the parent of the server's new temporary directory; default
	// os.TempDir(). Ignored when Dir is set.
	BaseDir string
	// Dir, when set, is the server's own directory (datadir, socket, logs),
	// created when missing and reused when it already holds an initialized
	// datadir, so a long-lived dev server keeps its data between runs. Stop
	// removes it like a temporary one.
	Dir string
	// StartTimeout bounds the wait for the server to answer; default
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Logf, when set, receives progress lines (tests pass t.Logf).
	Logf func(format string, args ...any)
}

// Server is a disposable MariaDB server. Its methods are safe for concurrent
// use.
type Server struct {
	Host    string // "127.0.0.1"
	Port    int
	Addr    string // "127.0.0.1:PORT"
	Dir     string // the server's directory: DataDir, error log, pid file
	DataDir string
	Socket  string
	// ErrorLog is mariadbd's --log-error file. It is appended to across
	// restarts.
	ErrorLog string

	opts Options

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	exitErr  error         // cmd.Wait's result, valid once done is closed
	ownsSock bool          // the socket lives outside Dir (path too long) and is removed by Stop
}

// The MariaDB binaries this package runs.
const (
	binServer  = "mariadbd"
	binInstall = "mariadb-install-db"
)

// FindBinary returns the path of a MariaDB program (mariadbd,
// mariadb-install-db, ...) from PATH or the directories Debian installs them
// in, or an error that says how to install it.
func FindBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/local/mysql/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("mariadbtest: %s not found on PATH or in /usr/sbin, /usr/bin: install MariaDB "+
		"with `apt-get install -y mariadb-server` (Debian/Ubuntu), or run scripts/test.sh, which does", name)
}

// Start initializes a datadir and starts a server, returning once it answers
// queries over TCP. ctx bounds only the startup: the server keeps running
// until Stop, StopKeep or Kill.
func Start(ctx context.Context, opts Options) (*Server, error) {
	for _, b := range []string{binServer, binInstall} {
		if _, err := FindBinary(b); err != nil {
			return nil, err
		}
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	s := &Server{Host: "127.0.0.1", opts: opts}
	createdDir, err := s.prepareDir(ctx)
	if err != nil {
		return nil, err
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				break
			}
		}
		err = s.start(ctx, port)
		if err == nil {
			return s, nil
		}
		// A port picked free can be taken again before mariadbd binds it.
		if opts.Port != 0 || attempt == attempts || !errors.Is(err, errPortInUse) {
			break
		}
		s.opts.Logf("mariadbtest: port %d was taken, trying another", port)
	}
	if createdDir {
		s.removeFiles()
	}
	return nil, err
}

// prepareDir creates the server's directory and initializes its datadir
// unless it already holds one. createdDir reports whether the directory is
// new (and so should be removed if the server cannot start).
func (s *Server) prepareDir(ctx context.Context) (createdDir bool, err error) {
	s.Dir = s.opts.Dir
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp(s.opts.BaseDir, "ferry-mariadb-"); err != nil {
			return false, fmt.Errorf("mariadbtest: create server directory: %w", err)
		}
		createdDir = true
	} else {
		if s.Dir, err = filepath.Abs(s.Dir); err != nil {
			return false, err
		}
		if _, err := os.Stat(s.Dir); errors.Is(err, os.ErrNotExist) {
			createdDir = true
		}
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return false, fmt.Errorf("mariadbtest: create server directory: %w", err)
		}
	}
	s.DataDir = filepath.Join(s.Dir, "data")
	s.ErrorLog = filepath.Join(s.Dir, "error.log")
	s.Socket = filepath.Join(s.Dir, "mysqld.sock")
	if len(s.Socket) > 100 { // sun_path holds 108 bytes
		f, err := os.CreateTemp("", "ferry-mariadb-*.sock")
		if err != nil {
			return createdDir, fmt.Errorf("mariadbtest: socket path: %w", err)
		}
		f.Close()
		os.Remove(f.Name())
		s.Socket, s.ownsSock = f.Name(), true
	}
	// mysql.user (a view since 10.4) is among the last things
	// mariadb-install-db creates: without it an earlier init was interrupted
	// and is redone.
	if _, err := os.Stat(filepath.Join(s.DataDir, "mysql", "user.frm")); err == nil {
		s.opts.Logf("mariadbtest: reusing datadir %s", s.DataDir)
		return createdDir, nil
	}
	if err := os.RemoveAll(s.DataDir); err != nil {
		return createdDir, fmt.Errorf("mariadbtest: clear datadir: %w", err)
	}
	if err := s.initDataDir(ctx); err != nil {
		if createdDir {
			s.removeFiles()
		}
		return false, err
	}
	return createdDir, nil
}

// installArgs are mariadb-install-db's arguments for datadir.
func installArgs(datadir string) []string {
	return []string{"--no-defaults", "--user=root", "--datadir=" + datadir,
		"--auth-root-authentication-method=normal", "--skip-test-db",
		// Server options for the bootstrap run: the redo log is created at
		// the size the server uses, so its first start does not resize it.
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"}
}

// installDB runs mariadb-install-db to initialize datadir.
func installDB(ctx context.Context, datadir string, logf func(string, ...any)) error {
	installDB, err := FindBinary(binInstall)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := exec.Command(installDB, installArgs(datadir)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	if err := startProcess(cmd); err != nil {
		return fmt.Errorf("mariadbtest: run %s: %w", binInstall, err)
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	select {
	case err = <-waitc:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waitc
		return fmt.Errorf("mariadbtest: %s: %w", binInstall, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("mariadbtest: %s --datadir=%s failed: %w: %s", binInstall, datadir, err, tail(out.String(), 1500))
	}
	logf("mariadbtest: %s initialized %s in %v", binInstall, datadir, time.Since(started).Round(time.Millisecond))
	return nil
}

func (s *Server) args() []string {
	a := []string{"--no-defaults", "--user=root",
		"--datadir=" + s.DataDir, "--socket=" + s.Socket,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=" + s.Host,
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"), "--log-error=" + s.ErrorLog,
		"--server-id=" + strconv.FormatUint(uint64(s.opts.ServerID), 10),
		"--skip-name-resolve", "--max-connections=500",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
		// small and fast; durable against a kill of mariadbd, not of the machine
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
		"--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0",
		"--key-buffer-size=4M", "--aria-pagecache-buffer-size=8M",
		"--performance-schema=OFF", "--skip-innodb-buffer-pool-load-at-startup",
		"--skip-innodb-buffer-pool-dump-at-shutdown",
	}
	if !s.opts.NoBinlog {
		a = append(a, "--log-bin=mysql-bin", "--binlog-format=ROW",
			"--binlog-row-image=FULL", "--binlog-row-metadata=FULL")
	}
	return append(a, s.opts.ExtraArgs...)
}

// errPortInUse marks a start that failed because the TCP port was taken.
var errPortInUse = errors.New("port already in use")

// start runs mariadbd on port and waits until it answers. On failure the
// process is gone and the error carries the new part of the error log.
func (s *Server) start(ctx context.Context, port int) error {
	mariadbd, err := FindBinary(binServer)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("mariadbtest: server is already running")
	}
	if s.Port != port { // unchanged on Restart: readers of Addr never race with it
		s.Port = port
		s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	}
	logOffset := fileSize(s.ErrorLog)
	removeStaleSocket(s.Socket)
	cmd := exec.Command(mariadbd, s.args()...)
	if err := startProcess(cmd); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("mariadbtest: start %s: %w", mariadbd, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exitErr = err
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Unlock()

	started := time.Now()
	werr := s.waitReady(ctx, done)
	if werr == nil {
		s.opts.Logf("mariadbtest: %s ready in %v (pid %d, datadir %s)", s.Addr,
			time.Since(started).Round(time.Millisecond), cmd.Process.Pid, s.DataDir)
		return nil
	}
	// Not ready: make sure it is gone before reporting why.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	log := readFrom(s.ErrorLog, logOffset)
	err = fmt.Errorf("mariadbtest: mariadbd on %s (datadir %s) did not become ready after %v: %w\n--- tail of %s ---\n%s",
		s.Addr, s.DataDir, time.Since(started).Round(time.Millisecond), werr, s.ErrorLog, tail(log, 2500))
	if strings.Contains(log, "Address already in use") || strings.Contains(log, "Bind on TCP/IP port") {
		err = portInUseError{err}
	}
	return err
}

type portInUseError struct{ error }

func (e portInUseError) Unwrap() error        { return e.error }
func (e portInUseError) Is(target error) bool { return target == errPortInUse }

// removeStaleSocket removes a unix socket file left by a killed server, so
// that its presence means the new server is listening. A socket someone
// answers on is left alone (mariadbd will then report the conflict).
func removeStaleSocket(path string) {
	if _, err := os.Lstat(path); err != nil {
		return
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return
	}
	_ = os.Remove(path)
}

// waitReady polls until the server answers SELECT 1 over TCP and is ours,
// the process exits, or the deadline passes. It probes TCP only once
// mariadbd has created its unix socket, which it does right after binding
// the TCP port, and checks @@socket: a port picked free a moment ago may have
// been taken by another process since, which must not pass for our server.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	db, err := sql.Open("mysql", s.DSN("")+"&readTimeout=5s&writeTimeout=5s")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxIdleConns(0)
	probe := func() error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		var sock string
		if err := db.QueryRowContext(pctx, "SELECT @@socket").Scan(&sock); err != nil {
			return err
		}
		if sock != s.Socket {
			return fmt.Errorf("%s is served by another server (socket %s)", s.Addr, sock)
		}
		return nil
	}
	var last error = errors.New("no unix socket yet")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return s.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%w; last attempt: %v", ctx.Err(), last)
		case <-tick.C:
		}
		if _, err := os.Stat(s.Socket); err != nil {
			continue
		}
		// Probe in the background so that an exit or the deadline is noticed
		// even while something on the port never answers the handshake.
		res := make(chan error, 1)
		go func() { res <- probe() }()
		select {
		case <-exited:
			return s.exitError()
		case <-ctx.Done():
			return fmt.Errorf("%w; last attempt: %v", ctx.Err(), last)
		case err := <-res:
			if err == nil {
				return nil
			}
			last = err
		}
	}
}

func (s *Server) exitError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("mariadbd exited (%v)", s.exitErr)
}

// DSN returns a github.com/go-sql-driver/mysql DSN for root (empty password)
// over TCP to database db ("" for none), with multiStatements=true and
// parseTime=false.
func (s *Server) DSN(db string) string {
	return "root@tcp(" + s.Addr + ")/" + db +
		"?multiStatements=true&parseTime=false&interpolateParams=true&timeout=10s"
}

// Exec runs statements in order on one root connection (so SET and USE carry
// over), stopping at the first error, which names the statement.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("mariadbtest: connect to %s: %w", s.Addr, err)
	}
	defer conn.Close()
	for _, st := range stmts {
		if _, err := conn.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("mariadbtest: %s: %w", tail(st, 300), err)
		}
	}
	return nil
}

// CreateUser creates user@'%' identified by password and grants it each of
// grants, e.g. "REPLICATION SLAVE, REPLICATION CLIENT ON *.*" or
// "SELECT ON shop.*". A user that exists is replaced.
func (s *Server) CreateUser(ctx context.Context, user, password string, grants ...string) error {
	account := quote(user) + "@'%'"
	stmts := []string{
		"DROP USER IF EXISTS " + account,
		"CREATE USER " + account + " IDENTIFIED BY " + quote(password),
	}
	for _, g := range grants {
		stmts = append(stmts, "GRANT "+g+" TO "+account)
	}
	return s.Exec(ctx, stmts...)
}

// quote makes a SQL string literal.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(v) + "'"
}

// Running reports whether the mariadbd process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop shuts the server down gracefully (if it runs) and removes its
// directory. Calling it again, or after Kill, only removes what is left.
func (s *Server) Stop() error {
	err := s.StopKeep()
	if rmErr := s.removeFiles(); err == nil {
		err = rmErr
	}
	return err
}

func (s *Server) removeFiles() error {
	if s.ownsSock {
		_ = os.Remove(s.Socket)
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("mariadbtest: remove %s: %w", s.Dir, err)
	}
	return nil
}

// StopKeep shuts the server down gracefully (SIGTERM, then waits for it to
// exit), keeping its data for Restart. After a minute it kills it.
func (s *Server) StopKeep() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = fmt.Errorf("mariadbtest: %s did not shut down within 60s; killed it", s.Addr)
	}
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
	return err
}

// Kill stops the server with SIGKILL, as a crash would, keeping its data.
func (s *Server) Kill() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return errors.New("mariadbtest: server is not running")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	s.mu.Lock()
	if s.cmd == cmd {
		s.cmd = nil
	}
	s.mu.Unlock()
	return nil
}

// Restart starts a server stopped with StopKeep or Kill again, on the same
// port and datadir, and waits until it answers (crash recovery included).
func (s *Server) Restart(ctx context.Context) error {
	if s.Running() {
		return errors.New("mariadbtest: Restart: server is running")
	}
	if _, err := os.Stat(s.DataDir); err != nil {
		return fmt.Errorf("mariadbtest: Restart: datadir gone (Stop removes it; use StopKeep or Kill): %w", err)
	}
	// The port was free a moment ago; a client connection may hold it as
	// its ephemeral port for a little while, so retry briefly.
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if err = s.start(ctx, s.Port); err == nil || !errors.Is(err, errPortInUse) {
			return err
		}
		s.opts.Logf("mariadbtest: port %d busy, retrying", s.Port)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
	return err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mariadbtest: pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// cmdPid is the running mariadbd's pid, or 0.
func (s *Server) cmdPid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
