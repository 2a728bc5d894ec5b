package integration

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestReloadOnSIGHUP: a broken configuration is refused with its file and
// line while the old one keeps delivering; a valid one with an extra sink
// takes effect without a restart, and every row written before, during and
// after the reloads reaches the first sink.
func TestReloadOnSIGHUP(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	r1, r2 := receiver.New(), receiver.New()
	url1, url2 := receiver.Start(t, r1), receiver.Start(t, r2)
	dir := t.TempDir()
	c := pipelineConfig{server: shared, db: name, start: start, admin: freeAddr(t), serverID: nextServerID(),
		to: "r1", sinks: httpSink("r1", url1, "batch")}
	cfgPath := c.yaml(t, dir)
	p := startFerryReady(t, cfgPath, c.admin)
	written, stopWriter := writeRows(t, db, 2*time.Millisecond)
	eventually(t, 30*time.Second, "100 events", func() bool { return r1.Count() >= 100 })

	// A broken configuration: an unknown key on line 20 of the file.
	broken := c
	broken.extra = "    bogus_key: 1"
	broken.yaml(t, dir)
	hangup(t, p)
	wantErr := regexp.MustCompile(regexp.QuoteMeta(cfgPath) + `:20:\d+: sources\.db\.bogus_key: unknown key`)
	eventually(t, 10*time.Second, "the rejection logged at file:line", func() bool {
		return strings.Contains(p.stderr.String(), "reload: configuration rejected") && wantErr.MatchString(p.stderr.String())
	})
	before := r1.Count()
	eventually(t, 10*time.Second, "deliveries after the rejected reload", func() bool { return r1.Count() >= before+100 })
	if !p.running() {
		t.Fatal("ferry exited after a broken reload")
	}

	// A valid change: a second sink that receives every default event.
	valid := c
	valid.to, valid.sinks = "r1, r2", httpSink("r1", url1, "batch")+httpSink("r2", url2, "batch")
	valid.yaml(t, dir)
	hangup(t, p)
	eventually(t, 30*time.Second, "the new configuration running", func() bool {
		return strings.Contains(p.stderr.String(), "reload: starting the pipeline with the new configuration") && r2.Count() > 0
	})
	if !regexp.MustCompile(`reload: configuration accepted.*sinks_added=\[?r2\]?`).MatchString(p.stderr.String()) {
		t.Errorf("the accepted reload does not log the added sink:\n%s", grepLines(p.stderr.String(), "reload:"))
	}
	afterReload := int(written.Load())
	eventually(t, 30*time.Second, "rows after the reload at r2", func() bool { return r2.Count() >= 100 })
	n := stopWriter()

	eventually(t, 60*time.Second, fmt.Sprintf("all %d rows at r1", n), func() bool { return len(rowIDs(t, r1.Events())) >= n })
	ids1, ids2 := rowIDs(t, r1.Events()), rowIDs(t, r2.Events())
	for i := 1; i <= n; i++ {
		if !ids1[i] {
			t.Fatalf("row %d never reached r1", i)
		}
	}
	eventually(t, 30*time.Second, "rows written after the reload at r2", func() bool {
		ids2 = rowIDs(t, r2.Events())
		return len(ids2) >= n-afterReload
	})
	for i := afterReload + 1; i <= n; i++ {
		if !ids2[i] {
			t.Fatalf("row %d, written after the reload, never reached r2", i)
		}
	}
	d1, d2 := checkDuplicates(t, r1.Events()), checkDuplicates(t, r2.Events())
	t.Logf("reload log lines:\n%s", grepLines(p.stderr.String(), "reload:"))
	t.Logf("%d rows; r1 %d events (%d duplicates), r2 %d events (%d duplicates)", n, r1.Count(), d1, r2.Count(), d2)
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry exit %d", code)
	}
}

func hangup(t *testing.T, p *ferryProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
