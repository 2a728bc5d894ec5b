package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

var serverIDs atomic.Uint32

func init() { serverIDs.Store(5000) }

// nextServerID gives each ferry source its own replica server_id.
func nextServerID() uint32 { return serverIDs.Add(1) }

// binlogPos returns the server's current FILE:POS, so a test can start Ferry
// exactly before the changes it makes.
func binlogPos(t *testing.T, s *mariadbtest.Server) string {
	t.Helper()
	var file string
	var pos uint64
	var a, b, c any
	row := s.DB(t, "").QueryRow("SHOW MASTER STATUS")
	if err := row.Scan(&file, &pos, &a, &b, &c); err != nil {
		if err2 := s.DB(t, "").QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err2 != nil {
			t.Fatalf("SHOW MASTER STATUS: %v / %v", err, err2)
		}
	}
	return fmt.Sprintf("%s:%d", file, pos)
}

// newDB creates a uniquely named utf8mb4 database and returns its name and pool.
func newDB(t *testing.T, s *mariadbtest.Server) (string, *sql.DB) {
	t.Helper()
	name := "it_" + strings.NewReplacer("/", "_", "-", "_").Replace(strings.ToLower(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	if err := s.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`", "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatal(err)
	}
	return name, s.DB(t, name)
}

// binlogDB creates a uniquely named database on srv holding what stmts
// make, and returns it with the binlog position from before it was made: a
// ferry starting there sees every change the test makes to it.
func binlogDB(t *testing.T, srv *mariadbtest.Server, stmts ...string) (name string, db *sql.DB, start string) {
	t.Helper()
	start = binlogPos(t, srv)
	name, db = newDB(t, srv)
	exec1(t, db, stmts...)
	return name, db, start
}

// ownServer starts a binlog server the test may kill, with database d
// holding table t (id INT PRIMARY KEY), and returns it with the binlog
// position from before d was made.
func ownServer(t *testing.T) (*mariadbtest.Server, string) {
	t.Helper()
	srv := mariadbtest.StartT(t, mariadbtest.Options{})
	start := binlogPos(t, srv)
	if err := srv.Exec(context.Background(), "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return srv, start
}

// writeRows inserts rows 1, 2, ... into t, one per transaction, until the
// returned stop is called; stop returns the number of committed rows.
func writeRows(t *testing.T, db *sql.DB, pause time.Duration) (*atomic.Int64, func() int) {
	var written atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ctx.Err() == nil; i++ {
			if _, err := db.Exec("INSERT INTO t VALUES (?, ?)", i, "row-"+strconv.Itoa(i)); err != nil {
				t.Errorf("insert %d: %v", i, err)
				return
			}
			written.Store(int64(i))
			time.Sleep(pause)
		}
	})
	stop := func() int {
		cancel()
		wg.Wait()
		return int(written.Load())
	}
	t.Cleanup(func() { stop() })
	return &written, stop
}

func exec1(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, st := range stmts {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
}

// ferryProc is one `ferry run` process.
type ferryProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *lockedBuf
	stderr *lockedBuf
	done   chan struct{}
	err    error
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeConfig writes a config file into a fresh directory and returns its path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startFerry runs `ferry run -c cfg` with extra environment; the process is
// killed when the test ends.
func startFerry(t *testing.T, cfg string, env ...string) *ferryProc {
	t.Helper()
	return startFerryEnv(t, env, "run", "-c", cfg)
}

// startFerryReady runs `ferry run -c cfg` and waits until the admin API
// at adminAddr says it is ready.
func startFerryReady(t *testing.T, cfg, adminAddr string) *ferryProc {
	t.Helper()
	p := startFerry(t, cfg)
	waitReady(t, adminAddr)
	return p
}

// waitReady waits until the ferry whose admin API listens on adminAddr
// answers /readyz with 200.
func waitReady(t *testing.T, adminAddr string) {
	t.Helper()
	eventually(t, 30*time.Second, "ferry ready", func() bool { return httpOK("http://" + adminAddr + "/readyz") })
}

func (p *ferryProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *ferryProc) stop() int {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(60 * time.Second)
}

// kill sends SIGKILL, as a crash would.
func (p *ferryProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// wait returns the exit code, failing the test if the process runs past d.
func (p *ferryProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("ferry did not exit within %v; stderr:\n%s", d, tailLines(p.stderr.String(), 30))
	}
	return p.cmd.ProcessState.ExitCode()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runFerry runs a short-lived ferry command and returns exit code and output.
func runFerry(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ferry %v did not finish within %v; stderr:\n%s", args, timeout, errb.String())
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// runFerryProgressing runs a ferry command whose work the test watches
// through progress (events arriving at its sink) and returns its exit code
// and output. How long that work takes depends on the machine (tens of
// thousands of events through an HTTP sink under -race on 2 loaded cores
// take minutes), so there is no deadline: the test fails only when the
// process neither exits nor makes progress for stall, i.e. when it is stuck.
func runFerryProgressing(t *testing.T, stall time.Duration, progress func() int, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(ferryBin, args...)
	var out, errb lockedBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	exited := func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
	if !whileProgressing(stall, progress, exited) {
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("ferry %v made no progress for %v (at %d) and did not exit; stderr:\n%s", args, stall, progress(), tailLines(errb.String(), 30))
	}
	t.Logf("ferry %s ran %v, progress %d", args[0], time.Since(start).Round(time.Second), progress())
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// whileProgressing polls cond until it holds (true) or progress stood still
// for stall (false).
func whileProgressing(stall time.Duration, progress func() int, cond func() bool) bool {
	last, moved := progress(), time.Now()
	for !cond() {
		if n := progress(); n != last {
			last, moved = n, time.Now()
		} else if time.Since(moved) > stall {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
	return true
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listenOn serves h on a fixed address (for a sink that comes up late).
func listenOn(t *testing.T, addr string, h http.Handler) *http.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// startFerryArgs runs ferry with explicit arguments.
func startFerryArgs(t *testing.T, args ...string) *ferryProc {
	t.Helper()
	return startFerryEnv(t, nil, args...)
}

func startFerryEnv(t *testing.T, env []string, args ...string) *ferryProc {
	t.Helper()
	p := &ferryProc{t: t, stdout: &lockedBuf{}, stderr: &lockedBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(ferryBin, append(args, "--log-level", "debug")...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("ferry stderr (tail):\n%s", tailLines(p.stderr.String(), 40))
		}
	})
	return p
}
