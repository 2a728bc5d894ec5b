package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func kafkaSourceConfig(t *testing.T, dir, brokers, recvURL, admin string) string {
	return writeConfig(t, dir, fmt.Sprintf(`state: {dir: %s/state}
admin: {listen: %s}
defaults: {type_prefix: com.example, to: [recv]}
sources:
  legacy:
    type: kafka
    brokers: [%s]
    topics: [legacy]
    group: ferry-it
    commit_interval: 100ms
    max_batch: 50
    timeout: 5s
sinks:
  recv:
    type: http
    url: %s
    retry: {initial_backoff: 20ms, max_backoff: 200ms}
`, dir, admin, brokers, recvURL))
}

// deliveredOffsets indexes the receiver's events by partition: the offsets seen,
// and whether each partition's first deliveries came in offset order.
func deliveredOffsets(t *testing.T, r *receiver.Receiver) (seen map[int32]map[int64]bool, disorder string) {
	t.Helper()
	seen = map[int32]map[int64]bool{}
	for _, e := range r.Events() {
		parts := strings.Split(e.ID(), "/") // legacy/<partition>/<offset>
		if len(parts) != 3 {
			t.Fatalf("event id %q is not topic/partition/offset", e.ID())
		}
		p, _ := strconv.Atoi(parts[1])
		off, _ := strconv.ParseInt(parts[2], 10, 64)
		m := seen[int32(p)]
		if m == nil {
			m = map[int64]bool{}
			seen[int32(p)] = m
		}
		if !m[off] && off > 0 && !m[off-1] && disorder == "" {
			disorder = fmt.Sprintf("partition %d: offset %d delivered before offset %d", p, off, off-1)
		}
		m[off] = true
	}
	return seen, disorder
}

// TestKafkaSourceSurvivesKillsAndBrokerRestarts produces a stream while
// ferry is killed with SIGKILL and the broker restarted, at random moments
// (seed logged). Checked against the broker itself: every record of every
// partition is delivered at least once, each partition's records are first
// delivered in offset order, and after each kill the group's committed
// offsets never pass a record the receiver did not get.
func TestKafkaSourceSurvivesKillsAndBrokerRestarts(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const partitions = 4
	k := startKafka(t, "legacy", partitions)
	recv := receiver.New()
	recv.SetDelay(2 * time.Millisecond) // a legacy endpoint: the stream outlasts several rounds
	recvURL := recv.Start(t)
	dir := t.TempDir()
	cfg := kafkaSourceConfig(t, dir, k.addr, recvURL, "off")

	prod, err := kgo.NewClient(kgo.SeedBrokers(k.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	total := 600 + rng.IntN(600)
	produced := make(chan error, 1)
	prng := rand.New(rand.NewPCG(seed, 1)) // the producer's own
	go func() {
		for i := 0; i < total; {
			n := min(1+prng.IntN(40), total-i)
			rs := make([]*kgo.Record, n)
			for j := range rs {
				p := int32((i + j) % partitions)
				rs[j] = &kgo.Record{Topic: "legacy", Partition: p, Key: fmt.Appendf(nil, "p%d", p), Value: fmt.Appendf(nil, `{"seq":%d}`, i+j)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err := prod.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			if err != nil {
				continue // the broker restarts: produce the chunk again (duplicates are records too)
			}
			i += n
			time.Sleep(time.Duration(prng.IntN(20)) * time.Millisecond)
		}
		produced <- nil
	}()

	f := startFerry(t, cfg)
	done := false
	for round := 0; round < 4 || !done; round++ {
		target := recv.Count() + 30 + rng.IntN(80)
		eventually(t, 60*time.Second, "deliveries progress", func() bool {
			return recv.Count() >= target || done && allDelivered(t, k.addr, partitions, recv)
		})
		switch rng.IntN(3) {
		case 0:
			t.Logf("round %d: kill -9 ferry at %d deliveries", round, recv.Count())
			f.kill()
			checkCommittedBehindDeliveries(t, k.addr, partitions, recv)
			f = startFerry(t, cfg)
		case 1:
			t.Logf("round %d: restart the broker at %d deliveries", round, recv.Count())
			k.restart(t, time.Duration(100+rng.IntN(400))*time.Millisecond)
		default:
			t.Logf("round %d: restart the broker and kill -9 ferry at %d deliveries", round, recv.Count())
			k.restart(t, time.Duration(100+rng.IntN(400))*time.Millisecond)
			f.kill()
			checkCommittedBehindDeliveries(t, k.addr, partitions, recv)
			f = startFerry(t, cfg)
		}
		select {
		case <-produced:
			done = true
		default:
		}
	}
	ends := kafkatest.Ends(t, []string{k.addr}, "legacy", partitions)
	eventually(t, 120*time.Second, "every record delivered", func() bool { return allDelivered(t, k.addr, partitions, recv) })
	seen, disorder := deliveredOffsets(t, recv)
	if disorder != "" {
		t.Fatal(disorder)
	}
	for p, end := range ends {
		for off := range end {
			if !seen[p][off] {
				t.Fatalf("partition %d offset %d never delivered", p, off)
			}
		}
	}
	eventually(t, 30*time.Second, "offsets committed to the end", func() bool {
		c := kafkatest.Committed(t, []string{k.addr}, "ferry-it", "legacy", partitions)
		for p, end := range ends {
			if c[p] != end {
				return false
			}
		}
		return true
	})
	t.Logf("%d records over %d partitions, %d deliveries (%d duplicates)", total, partitions, recv.Count(), recv.Count()-sum(ends))
	if code := f.stop(); code != 0 {
		t.Fatalf("ferry exited %d", code)
	}
}

// allDelivered: the receiver has every record up to each partition's end.
func allDelivered(t *testing.T, brokers string, partitions int, recv *receiver.Receiver) bool {
	seen, _ := deliveredOffsets(t, recv)
	for p, end := range kafkatest.Ends(t, []string{brokers}, "legacy", partitions) {
		for off := range end {
			if !seen[p][off] {
				return false
			}
		}
	}
	return true
}

func sum(m map[int32]int64) int {
	n := 0
	for _, v := range m {
		n += int(v)
	}
	return n
}

// checkCommittedBehindDeliveries: every record before a committed offset
// reached the receiver.
func checkCommittedBehindDeliveries(t *testing.T, brokers string, partitions int, recv *receiver.Receiver) {
	t.Helper()
	committed := kafkatest.Committed(t, []string{brokers}, "ferry-it", "legacy", partitions)
	seen, _ := deliveredOffsets(t, recv)
	for p, c := range committed {
		for off := range c {
			if !seen[p][off] {
				t.Fatalf("partition %d committed at %d but offset %d was never delivered", p, c, off)
			}
		}
	}
}

// TestKafkaSourceBadRecordIsDeadLettered: a record produced with kcat that
// claims the binary binding without its required attributes is
// dead-lettered with its place and reason; the record behind it in the
// partition is delivered; /status and /metrics show the partition's lag.
func TestKafkaSourceBadRecordIsDeadLettered(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is required: apt-get install -y kcat (scripts/test.sh installs it)")
	}
	k := startKafka(t, "legacy", 1)
	recv := receiver.New()
	recvURL := recv.Start(t)
	dir, admin := t.TempDir(), freeAddr(t)
	cfg := kafkaSourceConfig(t, dir, k.addr, recvURL, admin)
	for _, args := range [][]string{
		{"-H", "ce_specversion=1.0", "-H", "ce_id=broken-1"}, // no source, no type
		{"-H", "ce_specversion=1.0", "-H", "ce_id=ok-1", "-H", "ce_source=/as400", "-H", "ce_type=com.example.ok", "-H", "content-type=application/json"},
		{"-k", "cust-9"},
	} {
		cmd := exec.Command(kcat, append([]string{"-P", "-b", k.addr, "-t", "legacy"}, args...)...)
		cmd.Stdin = strings.NewReader(`{"n":1}`)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v %s", err, out)
		}
	}
	f := startFerry(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := recv.WaitFor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	byID := map[string]event.Event{}
	for _, e := range recv.Events() {
		byID[e.ID()] = e
	}
	if e, ok := byID["ok-1"]; !ok || e.Type() != "com.example.ok" || e.Source() != "/as400" {
		t.Fatalf("binding record became %v", e)
	}
	if e := byID["legacy/0/2"]; e.ID() != "legacy/0/2" || e.Type() != "com.example.kafka.legacy" || e.Subject() != "cust-9" || e.Extensions()["partitionkey"] != "cust-9" {
		t.Fatalf("plain record became %v", e)
	}
	eventually(t, 30*time.Second, "the lag of the partition is 0 in /status", func() bool {
		st := kafkaStatus(t, admin)
		return len(st) == 1 && st[0].Committed == 3 && st[0].End == 3 && st[0].Lag == 0
	})
	s := opsScrape(t, admin)
	if v := opsMetric(t, s, "ferry_kafka_consumer_lag_records", "source", "legacy", "topic", "legacy", "partition", "0"); v != 0 {
		t.Fatalf("ferry_kafka_consumer_lag_records = %v", v)
	}
	if code := f.stop(); code != 0 {
		t.Fatalf("ferry exited %d", code)
	}
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "--json", "-c", cfg)
	if code != 0 || !strings.Contains(out, "legacy/0/0") || !strings.Contains(out, "type: MUST be a non-empty string") {
		t.Fatalf("dlq list: %d %q %q", code, out, errOut)
	}
}

type partitionRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
}

func kafkaStatus(t *testing.T, admin string) []partitionRow {
	t.Helper()
	_, body := opsGet(t, "http://"+admin+"/status")
	var doc struct {
		Sources map[string]struct {
			Partitions []partitionRow `json:"partitions"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("/status: %v: %s", err, body)
	}
	return doc.Sources["legacy"].Partitions
}
