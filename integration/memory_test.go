package integration

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestBigTransactionMemoryBounded: one transaction of 60 rows of 4 MB
// each (240 MB) read while the sink is down stays under the shipped
// Kubernetes limit of 256 MB peak RSS (run as shipped: GOMEMLIMIT from the
// limit), and every row arrives intact once the sink is back. Memory is bounded by bytes (max_tx_buffer_bytes,
// pipeline.max_in_flight_bytes), not only by counts.
func TestBigTransactionMemoryBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector multiplies memory; the bound is for release builds")
	}
	const rows, rowBytes, limit = 60, 4 << 20, 256 << 20
	name, db, start := binlogDB(t, shared, "CREATE TABLE big (id INT PRIMARY KEY, body LONGTEXT NOT NULL)")
	r := receiver.New()
	r.SetOutage(true)
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg, "GOMEMLIMIT=256MiB") // as deploy/kubernetes sets it, from the limit
	exec1(t, db, fmt.Sprintf("INSERT INTO big SELECT seq, REPEAT(CHAR(64 + seq %% 26), %d) FROM seq_1_to_%d", rowBytes, rows))
	eventually(t, 60*time.Second, "delivery attempts against the down sink", func() bool { return r.Attempts() > 0 })
	time.Sleep(3 * time.Second) // let reading run into the bounds while the sink is down
	r.SetOutage(false)
	events := waitEventsWithin(t, r, rows, 3*time.Minute)
	seen := map[string]bool{}
	for _, e := range events {
		d := decode(t, e)
		body, _ := d.After["body"].(string)
		id := fmt.Sprint(d.After["id"])
		if len(body) != rowBytes || body[0] != byte(64+int(d.After["id"].(float64))%26) {
			t.Fatalf("row %s: %d bytes, want %d", id, len(body), rowBytes)
		}
		seen[id] = true
	}
	if len(seen) != rows {
		t.Fatalf("%d distinct rows, want %d", len(seen), rows)
	}
	peak := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d MB for a %d MB transaction with the sink down", peak>>20, rows*rowBytes>>20)
	if peak >= limit {
		t.Errorf("peak RSS %d MB, want under %d MB", peak>>20, limit>>20)
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func waitEventsWithin(t *testing.T, r *receiver.Receiver, n int, d time.Duration) []event.Event {
	t.Helper()
	eventually(t, d, fmt.Sprintf("%d distinct events", n), func() bool { return distinct(r.Events()) >= n })
	return r.Events()
}

// peakRSS reads a process's peak resident set size (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
