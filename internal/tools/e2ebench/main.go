// Command e2ebench measures Ferry end to end: it loads N row changes into
// the binlog of a throwaway MariaDB, then starts `ferry run` as its own
// process and times how long it takes to drain them to a sink, reporting
// rows/s and the ferry process's peak RSS, one line per figure with its
// conditions. Before each round it times go-mysql's raw decode of the same
// binlog (-ceiling, on by default) and prints Ferry's share of it. The
// Kafka sink produces to a kfake broker in a process of its own
// (internal/tools/kfakebroker). With -work backfill it times
// `ferry backfill` of the loaded table instead; with -rate it inserts
// single-row transactions at that rate for -duration while ferry streams
// them to Kafka, and reports the CPU ferry spent per change and the
// commit -> consumer latency percentiles. -ferry OLD,NEW runs prebuilt
// binaries in turn on the same binlog (A/B), -cpuprofile keeps each run's
// CPU profile.
//
//	go run ./internal/tools/e2ebench -rows 1000000 -load single -sink kafka -rounds 3
//	go run ./internal/tools/e2ebench -rows 1000000 -load bulk -sink discard
//	go run ./internal/tools/e2ebench -sink kafka -rate 5000 -duration 60s
//	go run ./internal/tools/e2ebench -rows 200000 -sink http -mode batch
//	go run ./internal/tools/e2ebench -rows 1000000 -load bulk -work backfill -sink kafka
//	go run ./internal/tools/e2ebench -rows 200000 -ferry /tmp/ferry-old,/tmp/ferry-new -rounds 2 -cpuprofile /tmp/w2
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/tools/benchkit"
)

type options struct {
	rows     int
	load     string // single: one row per transaction; bulk: 1000-row INSERT ... SELECT statements
	sink     string // discard | http | kafka
	delivery string // kafka sink: at_least_once | exactly_once
	client   string // kafka sink: franz-go | sarama
	mode     string // http mode: binary | structured | batch
	work     string // stream | backfill
	metadata string // binlog_row_metadata of the server: FULL, or MINIMAL (decoded from the schema history)
	keepTemp bool
	ferry    string        // comma-separated prebuilt ferry binaries to A/B on one loaded binlog (default: build ./cmd/ferry)
	rounds   int           // interleaved rounds over the binaries
	profile  string        // CPU profile path prefix: each run writes PREFIX-<binary>-<round>.pprof
	heap     string        // heap profile path prefix: each drain writes PREFIX-<binary>-<round>.pprof at its peak RSS
	ceiling  bool          // also time go-mysql's raw decode of the same binlog
	rate     int           // steady mode: row changes per second (0: drain a preloaded backlog)
	linger   time.Duration // pipeline.sink_linger of the ferry under test
	lingers  string        // steady mode: comma-separated sink_linger values interleaved with the binaries
	duration time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rows, "rows", 1000000, "row changes to load and drain")
	flag.StringVar(&o.load, "load", "single", "single (one-row transactions) or bulk (1000-row statements)")
	flag.StringVar(&o.sink, "sink", "discard", "discard, http (a receiver in a second process) or kafka (a kfake broker in a second process)")
	flag.StringVar(&o.delivery, "delivery", "at_least_once", "kafka sink delivery: at_least_once or exactly_once (one transaction per write, the position in the checkpoint topic)")
	flag.StringVar(&o.client, "kafka-client", "franz-go", "kafka sink client: franz-go or sarama")
	flag.StringVar(&o.work, "work", "stream", "stream (ferry run drains the binlog) or backfill (ferry backfill reads the table)")
	flag.StringVar(&o.mode, "mode", "batch", "http sink mode: binary, structured or batch")
	flag.StringVar(&o.metadata, "metadata", "FULL", "the server's binlog_row_metadata: FULL, or MINIMAL (ferry decodes with its schema history)")
	flag.BoolVar(&o.keepTemp, "keep", false, "keep the temporary directory")
	flag.StringVar(&o.ferry, "ferry", "", "comma-separated prebuilt ferry binaries run in turn on the same binlog (A/B); default builds ./cmd/ferry")
	flag.BoolVar(&o.ceiling, "ceiling", true, "also time go-mysql's raw decode of the same binlog (BinlogSyncer, no output) and print ferry's share of it")
	flag.IntVar(&o.rate, "rate", 0, "steady mode: insert this many single-row transactions per second while ferry runs (needs -sink kafka); reports CPU per change and commit->consume latency")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "steady mode: how long to insert at -rate")
	flag.DurationVar(&o.linger, "linger", 0, "pipeline.sink_linger of the ferry under test (0: not set)")
	flag.StringVar(&o.lingers, "lingers", "", "steady mode: comma-separated pipeline.sink_linger values (0: not set) run in turn with each binary, interleaved; overrides -linger")
	flag.IntVar(&o.rounds, "rounds", 1, "interleaved rounds over the -ferry binaries")
	flag.StringVar(&o.profile, "cpuprofile", "", "write each run's CPU profile to PREFIX-<binary index>-<round>.pprof, in steady mode PREFIX-<binary index>-<-lingers index>-<round>.pprof (FERRY_CPUPROFILE)")
	flag.StringVar(&o.heap, "heapprofile", "", "backlog mode: write each drain's in-use heap profile to PREFIX-<binary index>-<round>.pprof, taken from admin /debug/pprof/heap when the process's RSS reaches a new peak (admin.pprof with a token)")
	flag.Parse()
	if o.heap != "" {
		adminToken = "e2ebench-heap-profile-token"
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "e2ebench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.delivery != "at_least_once" && (o.delivery != "exactly_once" || o.sink != "kafka") {
		return fmt.Errorf("-delivery %q: want at_least_once, or exactly_once with -sink kafka", o.delivery)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferry-e2ebench-")
	if err != nil {
		return err
	}
	if !o.keepTemp {
		defer os.RemoveAll(dir)
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	srv, err := mariadbtest.Start(ctx, mariadbtest.Options{BaseDir: dir, Logf: logf,
		ExtraArgs: []string{"--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0", "--innodb-buffer-pool-size=256M",
			"--binlog-row-metadata=" + o.metadata}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	if o.rate > 0 {
		if o.sink != "kafka" {
			return fmt.Errorf("-rate needs -sink kafka (latency is measured by a consumer of the topic)")
		}
		o.rows = 0 // nothing preloaded: rows are inserted at the rate while ferry runs
	}
	start, err := load(ctx, srv, o, logf)
	if err != nil {
		return err
	}
	bins, err := build(dir)
	if err != nil {
		return err
	}
	sinkBlock := "{type: discard}"
	if o.sink == "http" {
		url, stop, err := startReceiver(bins["cerecv"])
		if err != nil {
			return err
		}
		defer stop()
		sinkBlock = fmt.Sprintf("{type: http, url: %q, mode: %s, concurrency: 8}", url, o.mode)
	}
	var brokers string
	var broker *kafkaBroker
	if o.sink == "kafka" {
		broker = &kafkaBroker{bin: bins["kfakebroker"]}
		if err := broker.restart(); err != nil {
			return err
		}
		defer broker.close()
		brokers = broker.addr
		sinkBlock = fmt.Sprintf("{type: kafka, brokers: [%s], topic: orders, client: %s}", brokers, o.client)
		if o.delivery == "exactly_once" {
			// A transactional id per run ($RUN, see writeConfig): each run
			// drains the same binlog, which a position committed by an
			// earlier run under the same id would skip.
			sinkBlock = fmt.Sprintf("{type: kafka, brokers: [%s], topic: orders, delivery: exactly_once, transactional_id: e2ebench-$RUN}", brokers)
		}
	}
	addrs, err := benchkit.FreeAddrs(1)
	if err != nil {
		return err
	}
	admin := addrs[0]
	ferries := []string{bins["ferry"]}
	if o.ferry != "" {
		ferries = strings.Split(o.ferry, ",")
	}
	if o.rate > 0 {
		return steadyRounds(ctx, srv, ferries, dir, admin, brokers, start, o, logf)
	}
	for round := range max(o.rounds, 1) {
		var ceiling float64
		if o.ceiling && o.work == "stream" {
			if ceiling, err = decodeCeiling(ctx, srv, start, o.rows, false); err != nil {
				return err
			}
			fmt.Printf("raw go-mysql decode (BinlogSyncer, rows decoded, no output): %.0f rows/s [%s]\n", ceiling, o.conditions(round, -1))
			syncCeiling, err := decodeCeiling(ctx, srv, start, o.rows, true)
			if err != nil {
				return err
			}
			fmt.Printf("raw go-mysql decode, synchronous handler: %.0f rows/s [%s]\n", syncCeiling, o.conditions(round, -1))
			ceiling = max(ceiling, syncCeiling)
		}
		for i, bin := range ferries {
			// Each run starts from the same position with a fresh state
			// directory, so the binaries read the same binlog.
			cfg, err := writeConfig(dir, fmt.Sprintf("run-%d-%d", i, round), admin, srv.Addr, start, sinkBlock, o.linger)
			if err != nil {
				return err
			}
			env := os.Environ()
			if o.profile != "" {
				env = append(env, fmt.Sprintf("FERRY_CPUPROFILE=%s-%d-%d.pprof", o.profile, i, round))
			}
			if len(ferries) > 1 {
				logf("round %d, binary %d: %s", round, i, bin)
			}
			if o.work == "backfill" {
				if err := backfill(bin, cfg, env, o, round, i, logf); err != nil {
					return err
				}
				continue
			}
			heapPath := ""
			if o.heap != "" {
				heapPath = fmt.Sprintf("%s-%d-%d.pprof", o.heap, i, round)
			}
			if broker != nil && (round > 0 || i > 0) {
				if err := broker.restart(); err != nil {
					return err
				}
			}
			r, err := drain(bin, cfg, admin, heapPath, env, o, logf)
			if err != nil {
				return err
			}
			fmt.Printf("ferry -> %s: %.0f rows/s, %.2f CPU-us/row, peak RSS %d MB (anonymous %d, file %d) [%s]\n", o.sinkName(), r.rate, r.cpuUS, r.peakKB/1024, r.anonKB/1024, r.fileKB/1024, o.conditions(round, i))
			if ceiling > 0 {
				fmt.Printf("ferry -> %s / raw decode (the faster of the two): %.0f%% [%s]\n", o.sinkName(), 100*r.rate/ceiling, o.conditions(round, i))
			}
		}
	}
	return nil
}

// conditions names what a figure was measured under; binary < 0 is the raw
// decode, which runs no ferry.
func (o options) conditions(round, binary int) string {
	c := fmt.Sprintf("rows=%d load=%s metadata=%s round=%d", o.rows, o.load, o.metadata, round)
	if o.linger > 0 {
		c += fmt.Sprintf(" sink_linger=%s", o.linger)
	}
	if o.sink == "kafka" && binary >= 0 {
		c += " delivery=" + o.delivery
	}
	if binary >= 0 && o.ferry != "" {
		c += fmt.Sprintf(" binary=%s", strings.Split(o.ferry, ",")[binary])
	}
	return c
}

func (o options) sinkName() string {
	switch o.sink {
	case "http":
		return "http (" + o.mode + ", receiver in a 2nd process)"
	case "kafka":
		return "kafka (kfake broker in a 2nd process)"
	}
	return o.sink
}

// writeConfig writes the ferry configuration of one run, with a state
// directory of its own.
func writeConfig(dir, run, admin, mysqlAddr, start, sinkBlock string, linger time.Duration) (string, error) {
	cfg := filepath.Join(dir, run+".yaml")
	body := ""
	if linger > 0 { // only when asked: an older binary under A/B does not know the key
		body = fmt.Sprintf("pipeline: {sink_linger: %s}\n", linger)
	}
	sinkBlock = strings.ReplaceAll(sinkBlock, "$RUN", run)
	if adminToken != "" { // -heapprofile: pprof needs a token
		admin += ", token: " + adminToken + ", pprof: true"
	}
	body += fmt.Sprintf(`state: {dir: %s/%s}
admin: {listen: %s}
defaults: {to: [out]}
sources:
  db: {type: mysql, addr: %s, user: root, server_id: 99, include: [bench.*], start: %s}
sinks:
  out: %s
`, dir, run, admin, mysqlAddr, start, sinkBlock)
	return cfg, os.WriteFile(cfg, []byte(body), 0o600)
}

// load writes o.rows row changes and returns the binlog position before them.
func load(ctx context.Context, srv *mariadbtest.Server, o options, logf func(string, ...any)) (string, error) {
	stmts := []string{
		"CREATE DATABASE bench",
		"CREATE TABLE bench.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64), qty INT, price DECIMAL(10,2), created DATETIME(6))",
		`CREATE PROCEDURE bench.load_single(n INT) BEGIN DECLARE i INT DEFAULT 0;
		   WHILE i < n DO INSERT INTO bench.orders VALUES (i, CONCAT('customer-', i), i % 100, i / 7, NOW(6)); SET i = i + 1; END WHILE; END`,
	}
	if err := srv.Exec(ctx, stmts...); err != nil {
		return "", err
	}
	pos, err := masterStatus(srv)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	switch o.load {
	case "single":
		err = srv.Exec(ctx, fmt.Sprintf("CALL bench.load_single(%d)", o.rows))
	case "bulk":
		for off := 0; off < o.rows && err == nil; off += 1000 {
			n := min(1000, o.rows-off)
			err = srv.Exec(ctx, fmt.Sprintf(`INSERT INTO bench.orders SELECT seq, CONCAT('customer-', seq), seq %% 100, seq / 7, NOW(6)
				FROM bench.seq_%d_to_%d`, off, off+n-1))
		}
	default:
		return "", fmt.Errorf("unknown -load %q", o.load)
	}
	if err != nil {
		return "", err
	}
	logf("loaded %d row changes (%s) in %v", o.rows, o.load, time.Since(t0).Round(time.Millisecond))
	return pos, nil
}

func masterStatus(srv *mariadbtest.Server) (string, error) {
	out, err := exec.Command("mariadb", "--no-defaults", "-h127.0.0.1", fmt.Sprintf("-P%d", srv.Port), "-uroot", "-N", "-e", "SHOW MASTER STATUS").Output()
	if err != nil {
		return "", fmt.Errorf("SHOW MASTER STATUS: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return "", fmt.Errorf("unexpected SHOW MASTER STATUS output %q", out)
	}
	return f[0] + ":" + f[1], nil
}

func build(dir string) (map[string]string, error) {
	bins := map[string]string{"ferry": "./cmd/ferry", "cerecv": "./internal/tools/cerecv", "kfakebroker": "./internal/tools/kfakebroker"}
	out := map[string]string{}
	for name, pkg := range bins {
		path := filepath.Join(dir, name)
		if b, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v: %s", pkg, err, b)
		}
		out[name] = path
	}
	return out, nil
}

func startReceiver(bin string) (string, func(), error) {
	addr, stop, err := startHelper(bin, "-discard")
	if err != nil {
		return "", nil, err
	}
	return "http://" + addr + "/events", stop, nil
}

// startKafka starts a kfake broker with 6 partitions in a process of its
// own (internal/tools/kfakebroker).
func startKafka(bin string, args ...string) (string, func(), error) {
	addr, stop, err := startHelper(bin, append([]string{"-partitions", "6"}, args...)...)
	if err != nil {
		return "", nil, err
	}
	brokerPID = lastHelperPID
	fmt.Fprintln(os.Stderr, "kfake broker process listening on", addr)
	return addr, stop, nil
}

// kafkaBroker is the kfake broker of the backlog drains, a new process on
// the same port for each drain: kfake's cost per record grows with what it
// already holds (1.3–1.6 µs of CPU per row in a new broker, 2.4–2.8 after
// 2–3M rows), which slowed each later drain of one broker and favoured
// the binary drained first in each round.
type kafkaBroker struct {
	bin, addr string
	stop      func()
}

// restart stops the broker, if one runs, and starts a new one on its port.
func (k *kafkaBroker) restart() error {
	k.close()
	var args []string
	if k.addr != "" {
		_, port, err := net.SplitHostPort(k.addr)
		if err != nil {
			return fmt.Errorf("kfake broker address %q: %w", k.addr, err)
		}
		args = append(args, "-port", port)
	}
	addr, stop, err := startKafka(k.bin, args...)
	if err != nil {
		return err
	}
	if k.addr != "" && addr != k.addr {
		stop()
		return fmt.Errorf("kfake broker restarted on %s, want %s", addr, k.addr)
	}
	k.addr, k.stop = addr, stop
	return nil
}

func (k *kafkaBroker) close() {
	if k.stop != nil {
		k.stop()
		k.stop = nil
	}
}

// brokerPID is the kfake broker process (0: none): its CPU per row is
// part of the Kafka path's cost, since it shares the machine's cores.
var brokerPID, lastHelperPID int

// brokerCPU is the broker's utime+stime in ticks (0 without a broker).
func brokerCPU() int64 {
	if brokerPID == 0 {
		return 0
	}
	t, _ := cpuTicks(brokerPID)
	return t
}

// startHelper starts a helper process that prints its address on the
// first line of stdout.
func startHelper(bin string, args ...string) (string, func(), error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	lastHelperPID = cmd.Process.Pid
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return "", nil, fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	return strings.TrimSpace(addr), func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }, nil // SIGINT flushes a broker profile
}

// drain starts ferry and waits until the sink acknowledged every row.
// drainResult is one drain's figures.
type drainResult struct {
	rate   float64 // rows/s from ferry's start to the sink's last ack
	peakKB int64   // ferry's peak RSS
	// anonKB and fileKB are the peaks of its anonymous (heap, stacks) and
	// file-backed (the executable's mapped pages) resident parts, sampled:
	// the file part is ~35-40 MB of Ferry's binary, resident from the
	// start on this kernel, which no Go setting changes.
	anonKB, fileKB int64
	// cpuUS is ferry's CPU (utime+stime) per row in microseconds: unlike the
	// rate it does not depend on what else the machine runs.
	cpuUS float64
}

func drain(ferry, cfg, admin, heapPath string, env []string, o options, logf func(string, ...any)) (drainResult, error) {
	cmd := exec.Command(ferry, "run", "-c", cfg, "--log-level", "warn")
	cmd.Env = env
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return drainResult{}, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	var peak, anon, file int64
	broker0 := brokerCPU()
	for {
		time.Sleep(20 * time.Millisecond)
		rss := rssKB(cmd.Process.Pid)
		a, f := rssParts(cmd.Process.Pid)
		anon, file = max(anon, a), max(file, f)
		n, err := delivered(admin)
		// A new peak's heap, once the admin listener answers.
		if err == nil && rss > peak && heapPath != "" {
			if err := saveHeapProfile(admin, heapPath); err != nil {
				logf("heap profile: %v", err)
			}
		}
		peak = max(peak, rss)
		if err == nil && n >= uint64(o.rows) {
			break
		}
		if time.Since(t0) > 30*time.Minute {
			return drainResult{}, fmt.Errorf("not drained after 30 minutes (%d of %d)", n, o.rows)
		}
	}
	el := time.Since(t0)
	peak = max(peak, rssKB(cmd.Process.Pid))
	ticks, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return drainResult{}, err
	}
	logf("drained %d row changes (%s load) to %s in %v", o.rows, o.load, o.sinkName(), el.Round(time.Millisecond))
	cpuUS := float64(ticks) / userHZ * 1e6 / float64(o.rows)
	if brokerPID != 0 {
		logf("kfake broker CPU %.2f us/row", float64(brokerCPU()-broker0)/userHZ*1e6/float64(o.rows))
	}
	return drainResult{rate: float64(o.rows) / el.Seconds(), peakKB: peak, anonKB: anon, fileKB: file, cpuUS: cpuUS}, nil
}

func delivered(admin string) (uint64, error) {
	st, err := sinkCounters(admin)
	return st.Delivered, err
}

// sinkCounts are the counters of the sink "out" in ferry's /status.
type sinkCounts struct {
	Delivered uint64 `json:"delivered"`
	Writes    uint64 `json:"writes"`
}

// adminToken is the admin token of the ferry under test, set only for
// -heapprofile (admin.pprof requires one; /status then does too).
var adminToken string

// adminGet GETs path from ferry's admin listener, with the token if set.
func adminGet(admin, path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+admin+path, nil)
	if err != nil {
		return nil, err
	}
	if adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	return http.DefaultClient.Do(req)
}

// saveHeapProfile writes ferry's in-use heap profile (as of its last GC)
// to path, replacing an earlier one.
func saveHeapProfile(admin, path string) error {
	resp, err := adminGet(admin, "/debug/pprof/heap")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/heap: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o600)
}

func sinkCounters(admin string) (sinkCounts, error) {
	resp, err := adminGet(admin, "/status")
	if err != nil {
		return sinkCounts{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Sinks map[string]sinkCounts `json:"sinks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return sinkCounts{}, err
	}
	return st.Sinks["out"], nil
}

// rssKB reads the process's peak resident set (VmHWM) in KiB.
func rssKB(pid int) int64 { return statusKB(pid, "VmHWM:")[0] }

// rssParts reads the process's current anonymous and file-backed resident
// sets in KiB.
func rssParts(pid int) (anon, file int64) {
	kb := statusKB(pid, "RssAnon:", "RssFile:")
	return kb[0], kb[1]
}

// statusKB reads fields of /proc/PID/status given in KiB (0 if missing).
func statusKB(pid int, fields ...string) []int64 {
	kb := make([]int64, len(fields))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return kb
	}
	for _, line := range strings.Split(string(b), "\n") {
		for i, f := range fields {
			if strings.HasPrefix(line, f) {
				fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, f)), "%d", &kb[i])
			}
		}
	}
	return kb
}
