// Command floodbench measures the webhook listener under a slow-body
// flood: it starts `ferry run` (a signed webhook source, the admin
// listener) as its own process, holds -conns connections from 127.0.0.2,
// 127.0.0.3, ... (-per-ip each) that send their headers and then one body
// byte a second, reopening any the server closes a second later, and meanwhile sends a
// signed request from 127.0.0.1 and asks /healthz every -every, reporting
// their status and latency and ferry's resident memory.
//
//	go run ./internal/tools/floodbench -conns 20000 -per-ip 50 -duration 30s
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
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
	"time"

	"github.com/ferry-cdc/ferry/internal/tools/benchkit"
)

const secret = "floodbench-secret"

// perWorker is how many connections one attacking process holds: the
// descriptor limit of a process (RLIMIT_NOFILE, 20000 on the machine this
// was written on, and not raisable without CAP_SYS_RESOURCE) caps it.
const perWorker = 10000

func main() {
	conns := flag.Int("conns", 20000, "slow-body connections to hold")
	perIP := flag.Int("per-ip", 50, "connections per attacking address (127.0.0.2, 127.0.0.3, ...)")
	duration := flag.Duration("duration", 30*time.Second, "how long to measure once the flood is up")
	every := flag.Duration("every", time.Second, "how often to send the signed request and ask /healthz")
	worker := flag.String("worker", "", "internal: hold connections to this address (with -first, -conns, -per-ip)")
	first := flag.Int("first", 0, "internal: index of the worker's first connection")
	flag.Parse()
	raiseFileLimit()
	if *worker != "" {
		attack(*worker, *first, *conns, *perIP)
		return
	}
	if err := run(*conns, *perIP, *duration, *every); err != nil {
		fmt.Fprintln(os.Stderr, "floodbench:", err)
		os.Exit(1)
	}
}

// raiseFileLimit lifts the soft descriptor limit to the hard one (Go
// does this itself since 1.19; done here to not depend on it) and tries
// to lift the hard one too; ferry, a child, inherits it.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	want := syscall.Rlimit{Cur: 1 << 17, Max: 1 << 17}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// attack is a worker process: it holds its share of the flood until
// killed, printing how many connections are open every second.
func attack(target string, first, conns, perIP int) {
	f := &flood{target: target, path: "/hooks/flood"}
	f.start(context.Background(), first, conns, perIP)
	for {
		fmt.Printf("%d %d\n", f.open.Load(), f.reopened.Load())
		time.Sleep(time.Second)
	}
}

func run(conns, perIP int, duration, every time.Duration) error {
	dir, err := os.MkdirTemp("", "ferry-floodbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchkit.BuildFerry(dir)
	if err != nil {
		return err
	}
	addrs, err := benchkit.FreeAddrs(2)
	if err != nil {
		return err
	}
	listen, admin := addrs[0], addrs[1]
	cfg := filepath.Join(dir, "ferry.yaml")
	body := fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: %s}
defaults: {to: [out]}
sources:
  hooks:
    type: webhook
    listen: %s
    path: /hooks/flood
    verify: {scheme: hmac-sha256, header: X-Signature, secret: %s}
sinks:
  out: {type: discard}
`, dir, admin, listen, secret)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(bin, "run", "-c", cfg, "--log-level", "error")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitUp("http://" + admin + "/healthz"); err != nil {
		return err
	}
	w, err := startWorkers(listen, conns, perIP)
	if err != nil {
		return err
	}
	defer w.stop()
	fmt.Fprintf(os.Stderr, "flood up: %d connections dialed from %d addresses by %d processes\n", conns, (conns+perIP-1)/perIP, len(w.procs))
	return measure(cmd.Process.Pid, "http://"+listen+"/hooks/flood", "http://"+admin+"/healthz", w, duration, every)
}

// workers are the attacking processes and their last reported counts.
type workers struct {
	procs          []*exec.Cmd
	total, perIP   int
	open, reopened []atomic.Int64
	up             sync.WaitGroup
}

// startWorkers starts one process per perWorker connections and returns
// once each reports its share dialed.
func startWorkers(target string, conns, perIP int) (*workers, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	n := (conns + perWorker - 1) / perWorker
	w := &workers{total: conns, perIP: perIP, open: make([]atomic.Int64, n), reopened: make([]atomic.Int64, n)}
	for i := range n {
		count := min(perWorker, conns-i*perWorker)
		cmd := exec.Command(self, "-worker", target, "-first", strconv.Itoa(i*perWorker), "-conns", strconv.Itoa(count), "-per-ip", strconv.Itoa(perIP))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			w.stop()
			return nil, err
		}
		w.procs = append(w.procs, cmd)
		w.up.Add(1)
		go w.follow(i, out)
	}
	w.up.Wait()
	return w, nil
}

// follow reads a worker's "open reopened" lines.
func (w *workers) follow(i int, out io.Reader) {
	sc := bufio.NewScanner(out)
	first := true
	for sc.Scan() {
		var open, reopened int64
		if _, err := fmt.Sscan(sc.Text(), &open, &reopened); err == nil {
			w.open[i].Store(open)
			w.reopened[i].Store(reopened)
		}
		if first {
			w.up.Done()
			first = false
		}
	}
	if first {
		w.up.Done()
	}
}

func (w *workers) counts() (open, reopened int64) {
	for i := range w.open {
		open += w.open[i].Load()
		reopened += w.reopened[i].Load()
	}
	return open, reopened
}

func (w *workers) stop() {
	for _, p := range w.procs {
		_ = p.Process.Kill()
		_ = p.Wait()
	}
}

// measure probes every interval and prints a summary line per probe and a
// markdown row at the end.
func measure(pid int, hookURL, healthURL string, f *workers, duration, every time.Duration) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var worstHook, worstHealth time.Duration
	var peakRSS int64
	failures := 0
	probes := 0
	for stop := time.Now().Add(duration); time.Now().Before(stop); time.Sleep(every) {
		probes++
		hookStatus, hookLat := signedPost(client, hookURL, probes)
		healthStatus, healthLat := get(client, healthURL)
		rss := rssBytes(pid)
		worstHook, worstHealth, peakRSS = max(worstHook, hookLat), max(worstHealth, healthLat), max(peakRSS, rss)
		if hookStatus != http.StatusOK || healthStatus != http.StatusOK || hookLat >= time.Second {
			failures++
		}
		open, reopened := f.counts()
		fmt.Fprintf(os.Stderr, "webhook %d in %v, /healthz %d in %v, ferry RSS %d MB, flood open %d (reopened %d)\n",
			hookStatus, hookLat.Round(time.Millisecond), healthStatus, healthLat.Round(time.Millisecond), rss>>20, open, reopened)
	}
	fmt.Printf("| %d | %d | %d | %v | %v | %d MB | %d |\n", f.total, f.perIP, probes,
		worstHook.Round(time.Millisecond), worstHealth.Round(time.Millisecond), peakRSS>>20, failures)
	if failures > 0 {
		return fmt.Errorf("%d of %d probes failed (not 200, or the webhook took 1 s or more)", failures, probes)
	}
	return nil
}

func signedPost(client *http.Client, url string, n int) (int, time.Duration) {
	body := []byte(fmt.Sprintf(`{"probe":%d}`, n))
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Signature", hex.EncodeToString(mac.Sum(nil)))
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(t0)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0)
}

func get(client *http.Client, url string) (int, time.Duration) {
	t0 := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return 0, time.Since(t0)
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(t0)
}

// flood holds slow-body connections, each from its attacking address.
type flood struct {
	target, path   string
	open, reopened atomic.Int64
}

// start dials connections first .. first+conns-1 of the flood and returns
// once each was dialed once.
func (f *flood) start(ctx context.Context, first, conns, perIP int) {
	var wg sync.WaitGroup
	for i := first; i < first+conns; i++ {
		n := 2 + i/perIP // 127.0.0.2, ...: every address of 127/8 is this host
		ip := net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
		wg.Add(1)
		go f.hold(ctx, ip, &wg)
	}
	wg.Wait() // every connection dialed once
}

// hold keeps one slow-body connection from ip open until ctx ends,
// reopening it a second after the server closes it.
func (f *flood) hold(ctx context.Context, ip net.IP, dialed *sync.WaitGroup) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	first := true
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", f.target)
		if first {
			dialed.Done()
			first = false
		}
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		f.open.Add(1)
		f.trickle(ctx, c)
		f.open.Add(-1)
		c.Close()
		f.reopened.Add(1)
		time.Sleep(time.Second) // then reopen, as a patient attacker does
	}
}

// trickle sends headers announcing a 1 MB body, then a byte a second.
func (f *flood) trickle(ctx context.Context, c net.Conn) {
	head := "POST " + f.path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Signature: 00\r\nContent-Length: 1000000\r\n\r\n"
	if _, err := c.Write([]byte(head)); err != nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func waitUp(url string) error {
	for range 200 {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("ferry did not start its admin listener")
}
