package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture Go supports (the kernel's HZ does not leak
// into /proc).
const userHZ = 100

// steadyRounds runs each ferry binary in turn, o.rounds times, in steady
// mode. Every run starts from the binlog position at its start, with a
// state directory, a topic and a range of row ids of its own, so the runs
// of an A/B do not see each other's rows.
func steadyRounds(ctx context.Context, srv *mariadbtest.Server, ferries []string, dir, admin, brokers, start string, o options, logf func(string, ...any)) error {
	lingers := []time.Duration{o.linger}
	if o.lingers != "" {
		lingers = lingers[:0]
		for _, f := range strings.Split(o.lingers, ",") {
			d, err := time.ParseDuration(f)
			if err != nil {
				return fmt.Errorf("-lingers: %w", err)
			}
			lingers = append(lingers, d)
		}
	}
	n := 0
	for round := range max(o.rounds, 1) {
		for i, bin := range ferries {
			for j, linger := range lingers {
				if n > 0 {
					var err error
					if start, err = masterStatus(srv); err != nil {
						return err
					}
				}
				run := fmt.Sprintf("steady-%d-%d-%d", i, j, round)
				topic := "orders-" + run
				sinkBlock := fmt.Sprintf("{type: kafka, brokers: [%s], topic: %s}", brokers, topic)
				cfg, err := writeConfig(dir, run, admin, srv.Addr, start, sinkBlock, linger)
				if err != nil {
					return err
				}
				env := os.Environ()
				if o.profile != "" {
					env = append(env, fmt.Sprintf("FERRY_CPUPROFILE=%s-%d-%d-%d.pprof", o.profile, i, j, round))
				}
				cond := fmt.Sprintf("rate=%d/s duration=%v sink_linger=%v round=%d binary=%s single-row transactions, kfake broker in a 2nd process, consumer in e2ebench", o.rate, o.duration, linger, round, bin)
				r := steadyRun{ferry: bin, cfg: cfg, admin: admin, brokers: brokers, topic: topic, mysqlAddr: srv.Addr, idBase: n * o.rate * int(o.duration.Seconds()+2), env: env, cond: cond}
				if err := r.run(ctx, o, logf); err != nil {
					return err
				}
				n++
			}
		}
	}
	return nil
}

// steadyRun is one ferry run of steady mode.
type steadyRun struct {
	ferry, cfg, admin, brokers, topic, mysqlAddr string
	idBase                                       int // the first row id this run inserts
	env                                          []string
	cond                                         string // the conditions printed with each figure
}

// run starts ferry against a Kafka broker while single-row transactions
// are inserted at o.rate per second for o.duration, and reports the CPU
// ferry spent per change (utime+stime from /proc) and the latency from
// each row's commit (its created column, NOW(6) in UTC at insert) to the
// moment a consumer of the topic received it.
func (r steadyRun) run(ctx context.Context, o options, logf func(string, ...any)) error {
	cmd := exec.Command(r.ferry, "run", "-c", r.cfg, "--log-level", "warn")
	cmd.Env, cmd.Stderr = r.env, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	if err := waitReady(r.admin, time.Minute); err != nil {
		return err
	}
	// interpolateParams: one round trip per INSERT instead of three
	// (prepare, execute, close), so the inserter can keep the rate.
	db, err := sql.Open("mysql", "root@tcp("+r.mysqlAddr+")/bench?interpolateParams=true&time_zone=%27%2B00%3A00%27")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(inserters)
	db.SetMaxIdleConns(inserters)
	lat := &latencies{}
	stopConsume, err := consume(ctx, r.brokers, r.topic, lat)
	if err != nil {
		return err
	}
	defer stopConsume()
	cpu0, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return err
	}
	broker0 := brokerCPU()
	t0 := time.Now()
	inserted, err := insertAtRate(ctx, db, r.idBase, o.rate, o.duration)
	if err != nil {
		return err
	}
	window := time.Since(t0)
	for deadline := time.Now().Add(time.Minute); lat.count() < inserted; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer saw %d of %d rows a minute after the last insert", lat.count(), inserted)
		}
	}
	cpu1, err := cpuTicks(cmd.Process.Pid)
	if err != nil {
		return err
	}
	if lat.unparsed > 0 {
		return fmt.Errorf("%d records without a readable after.created", lat.unparsed)
	}
	cpuSec := float64(cpu1-cpu0) / userHZ
	p50, p99, worst := lat.percentiles()
	fmt.Printf("steady: inserted %d rows in %v (%.0f rows/s achieved) [%s]\n", inserted, window.Round(time.Millisecond), float64(inserted)/window.Seconds(), r.cond)
	fmt.Printf("steady: ferry CPU %.1f us per change (utime+stime %.2f s over %d changes) [%s]\n", 1e6*cpuSec/float64(inserted), cpuSec, inserted, r.cond)
	fmt.Printf("steady: commit -> consumer latency p50 %.1f ms, p99 %.1f ms, max %.1f ms [%s]\n", ms(p50), ms(p99), ms(worst), r.cond)
	sc, err := sinkCounters(r.admin)
	if err != nil {
		return err
	}
	fmt.Printf("steady: peak RSS %d MB; kfake broker CPU %.1f us per change; %.2f events per sink Write [%s]\n", rssKB(cmd.Process.Pid)/1024, 1e6*float64(brokerCPU()-broker0)/userHZ/float64(inserted), float64(sc.Delivered)/float64(max(sc.Writes, 1)), r.cond)
	return nil
}

// inserters is how many connections insert in steady mode: one commits
// about 3,000 single-row transactions/s here, short of the 5,000 asked.
const inserters = 8

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// insertAtRate inserts single-row transactions at rate per second for d,
// paced every 10 ms, over several connections so one slow commit does not
// stall the pace. It returns how many it inserted.
func insertAtRate(ctx context.Context, db *sql.DB, base, rate int, d time.Duration) (int, error) {
	ids := make(chan int, rate)
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range inserters {
		wg.Go(func() {
			for i := range ids {
				id := base + i
				if _, err := db.ExecContext(ctx, "INSERT INTO bench.orders VALUES (?, CONCAT('customer-', ?), ? % 100, ? / 7, NOW(6))", id, id, id, id); err != nil {
					failed.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	t0 := time.Now()
	next := 0
	tick := time.NewTicker(10 * time.Millisecond)
	for now := range tick.C {
		el := now.Sub(t0)
		if el > d || failed.Load() != nil {
			break
		}
		for target := int(el.Seconds() * float64(rate)); next < target; next++ {
			ids <- next
		}
	}
	tick.Stop()
	close(ids)
	wg.Wait()
	if p := failed.Load(); p != nil {
		return 0, fmt.Errorf("insert: %w", *p)
	}
	return next, nil
}

// latencies collects commit -> consume latencies.
type latencies struct {
	mu       sync.Mutex
	d        []time.Duration
	unparsed int // records without a readable created column
}

func (l *latencies) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.d) + l.unparsed }

func (l *latencies) percentiles() (p50, p99, worst time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l.d)
	at := func(q float64) time.Duration { return l.d[min(len(l.d)-1, int(q*float64(len(l.d))))] }
	return at(0.50), at(0.99), l.d[len(l.d)-1]
}

// consume reads the topic from its start and records, for each row event,
// the time from the row's created column to its arrival here.
func consume(ctx context.Context, brokers, topic string, lat *latencies) (func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation(), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var v struct {
					After struct {
						Created string `json:"created"`
					} `json:"after"`
				}
				err := json.Unmarshal(r.Value, &v)
				// A DATETIME(6) is written YYYY-MM-DDTHH:MM:SS.ffffff, without a
				// zone; the inserting session's time_zone is UTC.
				var created time.Time
				if err == nil {
					created, err = time.Parse("2006-01-02T15:04:05.999999", v.After.Created)
				}
				lat.mu.Lock()
				defer lat.mu.Unlock()
				if err != nil {
					lat.unparsed++
					return
				}
				lat.d = append(lat.d, now.Sub(created))
			})
		}
	}()
	return func() { cancel(); <-done; cl.Close() }, nil
}

// cpuTicks is utime+stime of pid, in USER_HZ ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3 (state).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, b)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, fmt.Errorf("utime in /proc/%d/stat: %w", pid, err)
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, fmt.Errorf("stime in /proc/%d/stat: %w", pid, err)
	}
	return utime + stime, nil
}

// waitReady waits until ferry's /readyz answers 200.
func waitReady(admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := adminGet(admin, "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("ferry not ready within " + timeout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
