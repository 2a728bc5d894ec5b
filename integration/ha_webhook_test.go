package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestHAWebhooksOnEveryReplica: with ha, a webhook source runs on every
// replica, the standby included: each accepts requests, journals them in
// its own state.dir and delivers them itself, with no lease. The standby
// stays ready (200 standby) while serving them, and ferry_ha_leader is
// only reported for the binlog source. Requests a replica acknowledged
// before kill -9 are delivered when it comes back, as a standby.
func TestHAWebhooksOnEveryReplica(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	r := receiver.New()
	url := receiver.Start(t, r)
	serverID := nextServerID()
	type replica struct {
		cfg, admin, hooks string
		pc                pipelineConfig
		p                 *ferryProc
	}
	var reps [2]*replica
	for i := range reps {
		hooks, adminAddr := freeAddr(t), freeAddr(t)
		pc := pipelineConfig{server: shared, db: name, start: start, url: url, mode: "batch", serverID: serverID, admin: adminAddr,
			state: fmt.Sprintf("  checkpoints: {type: mysql, database: %s}\n", name),
			top:   "ha:\n  lease: mysql\n  renew_interval: 500ms\n",
			extra: fmt.Sprintf("  hooks:\n    type: webhook\n    listen: %s\n    path: /hooks/t\n    id_header: X-Delivery-Id\n", hooks),
		}
		reps[i] = &replica{cfg: pc.yaml(t, t.TempDir()), pc: pc, admin: adminAddr, hooks: hooks}
	}
	a, b := reps[0], reps[1]
	a.p = startFerry(t, a.cfg)
	eventually(t, 30*time.Second, "A leading", func() bool { return roleOf(a.admin) == "leader" })
	b.p = startFerry(t, b.cfg)
	eventually(t, 30*time.Second, "B standing by", func() bool { return roleOf(b.admin) == "standby" })

	post := func(rep *replica, id string) {
		t.Helper()
		var resp *http.Response
		eventually(t, 30*time.Second, "webhook "+id+" accepted", func() bool {
			req, _ := http.NewRequest(http.MethodPost, "http://"+rep.hooks+"/hooks/t", bytes.NewReader([]byte(`{"n":"`+id+`"}`)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Delivery-Id", id)
			var err error
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode/100 == 2
		})
	}
	for i := range 20 {
		post(a, "a-"+strconv.Itoa(i))
		post(b, "b-"+strconv.Itoa(i))
	}
	exec1(t, db, "INSERT INTO t VALUES (1, 'one')")
	eventually(t, 30*time.Second, "40 webhooks and the row", func() bool { return r.Count() >= 41 })
	if code, body := getBody(b.admin, "/readyz"); code != http.StatusOK || body != "standby\n" {
		t.Errorf("standby serving webhooks: /readyz = %d %q, want 200 standby", code, body)
	}
	if roleOf(b.admin) != "standby" {
		t.Fatal("B is no longer the standby")
	}
	_, metrics := getBody(b.admin, "/metrics")
	if !strings.Contains(metrics, `ferry_ha_leader{source="db"} 0`) || strings.Contains(metrics, `ferry_ha_leader{source="hooks"}`) {
		t.Errorf("standby ferry_ha_leader:\n%s", grepLines(metrics, "ferry_ha_leader"))
	}
	if !strings.Contains(metrics, `ferry_source_connected{source="hooks"} 1`) {
		t.Errorf("standby's webhook source not connected:\n%s", grepLines(metrics, "ferry_source_connected"))
	}

	// A reload reaches the standby's webhook pipeline: it is rebuilt and
	// goes on accepting and delivering.
	b.pc.sinks = "  spare:\n    type: discard\n"
	b.pc.yaml(t, filepath.Dir(b.cfg))
	signal(t, b.p, syscall.SIGHUP)
	eventually(t, 30*time.Second, "B's webhook pipeline rebuilt", func() bool {
		return strings.Contains(b.p.stderr.String(), "reload: starting the pipeline with the new configuration")
	})
	post(b, "b-20")
	eventually(t, 30*time.Second, "b-20 after the reload", func() bool { return r.Count() >= 42 })

	// Requests acknowledged right before a crash are delivered by the
	// same replica once it is back (here, as a standby).
	r.SetOutage(true)
	for i := 20; i < 30; i++ {
		post(a, "a-"+strconv.Itoa(i))
	}
	a.p.kill()
	r.SetOutage(false)
	eventually(t, 30*time.Second, "B leading", func() bool { return roleOf(b.admin) == "leader" })
	a.p = startFerry(t, a.cfg)
	eventually(t, 30*time.Second, "A standing by", func() bool { return roleOf(a.admin) == "standby" })
	eventually(t, 30*time.Second, "every webhook", func() bool {
		ids := map[string]bool{}
		for _, e := range r.Events() {
			if strings.Contains(e.Type(), ".webhook.") {
				ids[e.ID()] = true
			}
		}
		return len(ids) == 51
	})
	for _, rep := range reps {
		if code := rep.p.stop(); code != 0 {
			t.Errorf("exit %d:\n%s", code, tailLines(rep.p.stderr.String(), 20))
		}
	}
}
