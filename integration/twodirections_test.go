package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// demoDir holds the two-directions demo whose configs the test runs.
const demoDir = "../deploy/compose/two-directions"

// capturingReceiver keeps every request's headers and exact body (for the
// Standard Webhooks verifier) and hands the request to a receiver.Receiver.
type capturingReceiver struct {
	recv *receiver.Receiver
	mu   sync.Mutex
	reqs []nodece.Request
}

func (c *capturingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, nodece.Capture(r, body))
	c.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.recv.ServeHTTP(w, r)
}

func (c *capturingReceiver) requests() []nodece.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]nodece.Request(nil), c.reqs...)
}

// testWebhookSecret is the Standard Webhooks secret the tests sign with.
const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestTwoDirections runs the demo's two configs (deploy/compose/
// two-directions: ferry-a.yaml, MariaDB to Kafka; ferry-b.yaml, Kafka to a
// signed HTTP POST) with test overlays, under a random workload of
// inserts, updates and deletes (seed logged) while ferry B is killed with
// SIGKILL and the broker process is killed and restarted on its data
// directory. At the end:
//   - every committed row change arrived at the endpoint at least once, and
//     duplicates are identical (they are counted and logged);
//   - per key, the first arrivals are exactly the key's committed changes in
//     commit order, and their binlog positions (file, pos, order in the
//     transaction) strictly increase: a key's order never goes backwards;
//   - the table rebuilt from the delivered events equals SELECT;
//   - the official Standard Webhooks library accepts every request.
func TestTwoDirections(t *testing.T) {
	nodece.Require(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))

	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT NOT NULL, pad VARCHAR(100) DEFAULT 'a legacy row')")
	w := &workload{db: db, rng: rand.New(rand.NewPCG(seed, 1)), rows: map[int]int{}}

	k := startKafka(t, "erp.changes", 4)
	endpoint := &capturingReceiver{recv: receiver.New()}
	srv := httptest.NewServer(endpoint)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	env := []string{"KAFKA_BROKERS=" + k.addr, "MYSQL_ADDR=" + shared.Addr, "MYSQL_PASSWORD=",
		"LEGACY_URL=" + srv.URL + "/webhooks/erp", "WEBHOOK_SECRET=" + testWebhookSecret, "FERRY_INSTANCE=ferry-b-it"}
	cfgA := []string{"run", "-c", filepath.Join(demoDir, "ferry-a.yaml"), "-c", overlay(t, dir, "a", fmt.Sprintf(`state: {dir: %s/a, checkpoint_interval: 50ms}
admin: {listen: "off"}
sources:
  erp-db: {user: root, password: "", include: ["%s.*"], start: "%s", server_id: %d, startup_timeout: 10s}
sinks:
  bus: {retry: {initial_backoff: 20ms, max_backoff: 500ms}}
`, dir, name, start, nextServerID()))}
	fileB := filepath.Join(demoDir, "ferry-b.yaml")
	cfgB := []string{"run", "-c", fileB, "-c", overlay(t, dir, "b", fmt.Sprintf(`state: {dir: %s/b, checkpoint_interval: 50ms}
admin: {listen: "off"}
sources:
  erp-changes: {commit_interval: 100ms, max_batch: 50, timeout: 5s}
sinks:
  legacy: {retry: {initial_backoff: 20ms, max_backoff: 500ms}}
`, dir))}

	a := startFerryEnv(t, env, cfgA...)
	b := startFerryEnv(t, env, cfgB...)
	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		pace := rand.New(rand.NewPCG(seed, 3)) // the writer's own
		for ctx.Err() == nil {
			w.step(t)
			time.Sleep(time.Duration(pace.IntN(3)) * time.Millisecond)
		}
	})
	// Both faults at least once, then random ones.
	faults := []int{0, 1, rng.IntN(3), rng.IntN(3)}
	for round, f := range faults {
		target := endpoint.recv.Count() + 20 + rng.IntN(60)
		eventually(t, 90*time.Second, fmt.Sprintf("round %d: deliveries reach %d", round, target), func() bool {
			return endpoint.recv.Count() >= target
		})
		if f != 1 {
			t.Logf("round %d: kill -9 ferry B at %d deliveries, %d changes committed", round, endpoint.recv.Count(), w.count())
			b.kill()
		}
		if f != 0 {
			t.Logf("round %d: kill -9 and restart the broker at %d deliveries", round, endpoint.recv.Count())
			k.restart(t, time.Duration(100+rng.IntN(400))*time.Millisecond)
		}
		if f != 1 {
			b = startFerryEnv(t, env, cfgB...)
		}
	}
	stopWriter()
	wg.Wait()
	want := w.committed()
	eventually(t, 3*time.Minute, fmt.Sprintf("%d distinct events at the endpoint", len(want)), func() bool {
		return distinct(endpoint.recv.Events()) >= len(want)
	})
	// Static membership reached the group: the only member is ferry B's
	// instance, the one restarted last having replaced the killed ones.
	if m := groupInstances(t, k.addr, "ferry-legacy-endpoint"); len(m) != 1 || m[0] != "ferry-b-it" {
		t.Errorf("group ferry-legacy-endpoint has members with instance ids %q, want one, ferry-b-it", m)
	}
	for name, p := range map[string]*ferryProc{"A": a, "B": b} {
		if code := p.stop(); code != 0 {
			t.Errorf("ferry %s exited %d", name, code)
		}
	}
	events := endpoint.recv.Events()
	verifyAgainstWorkload(t, events, want)
	verifyPositionsPerKey(t, events)
	verifyRebuiltState(t, events, db)
	reqs := endpoint.requests()
	for i, verdict := range nodece.VerifyStandardWebhooks(t, testWebhookSecret, reqs) {
		if verdict != "" {
			t.Errorf("request %d (ce-id %s): the Standard Webhooks library refused it: %s", i, reqs[i].Headers["ce-id"], verdict)
		}
	}
	t.Logf("%d committed changes; %d requests, %d events delivered, %d duplicates",
		len(want), len(reqs), len(events), len(events)-len(want))
}

// groupInstances lists the instance ids of group's members ("" for a
// dynamic member).
func groupInstances(t *testing.T, brokers, group string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("describe group %s: %v", group, err)
	}
	var out []string
	for _, m := range resp.Groups[0].Members {
		out = append(out, deref(m.InstanceID))
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// overlay writes a config overlay into a directory of its own under dir
// and returns its path.
func overlay(t *testing.T, dir, name, body string) string {
	t.Helper()
	sub := filepath.Join(dir, "overlay-"+name)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, sub, body)
}

// verifyPositionsPerKey: per primary key, the first arrivals' binlog
// positions (file, pos, then order within the transaction) strictly
// increase.
func verifyPositionsPerKey(t *testing.T, events []event.Event) {
	t.Helper()
	last := map[string]delivered{}
	for _, d := range distinctEvents(t, events) {
		if p, ok := last[d.key]; ok && !positionBefore(p, d) {
			t.Errorf("key %s: %s (%s:%d #%d) arrived first after %s (%s:%d #%d): order went backwards",
				d.key, d.id, d.file, d.pos, d.order, p.id, p.file, p.pos, p.order)
		}
		last[d.key] = d
	}
}

func positionBefore(a, b delivered) bool {
	if a.file != b.file {
		return a.file < b.file
	}
	if a.pos != b.pos {
		return a.pos < b.pos
	}
	return a.order < b.order
}

// verifyRebuiltState applies each event's first arrival in arrival order
// (a delete removes the row, anything else sets it to the after image)
// and compares the rows with SELECT.
func verifyRebuiltState(t *testing.T, events []event.Event, db *sql.DB) {
	t.Helper()
	seen := map[string]bool{}
	rebuilt := map[string]string{} // pk -> "id=.. v=.."
	for i, e := range events {
		if seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		d, err := decodeDelivered(e, i)
		if err != nil {
			t.Fatal(err)
		}
		if d.op == "delete" {
			delete(rebuilt, d.key)
			continue
		}
		rebuilt[d.key] = fmt.Sprintf("id=%v v=%v pad=%v", d.after["id"], d.after["v"], d.after["pad"])
	}
	rows, err := db.Query("SELECT id, v, pad FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	table := map[string]string{}
	for rows.Next() {
		var id, v int
		var pad string
		if err := rows.Scan(&id, &v, &pad); err != nil {
			t.Fatal(err)
		}
		table[fmt.Sprintf(`{"id":%d}`, id)] = fmt.Sprintf("id=%d v=%d pad=%s", id, v, pad)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(rebuilt, table) {
		for k, want := range table {
			if rebuilt[k] != want {
				t.Errorf("row %s: rebuilt %q, SELECT %q", k, rebuilt[k], want)
			}
		}
		for k, got := range rebuilt {
			if _, ok := table[k]; !ok {
				t.Errorf("row %s: rebuilt %q, absent from the table", k, got)
			}
		}
	}
	t.Logf("rebuilt %d rows from the delivered events; the table has %d", len(rebuilt), len(table))
}
