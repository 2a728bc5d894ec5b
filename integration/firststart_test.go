package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestFirstStartKeepsItsPosition: a first run (no checkpoint) with
// `start: latest` saves the position it resolved before reading anything,
// so rows written while it is stopped, before it delivered anything, arrive
// after the restart: an idle database stopped with SIGTERM or SIGKILL, and
// a change read while the sink is down, then SIGTERM.
func TestFirstStartKeepsItsPosition(t *testing.T) {
	for _, how := range []string{"idle-sigterm", "idle-sigkill", "sink-down-sigterm"} {
		t.Run(how, func(t *testing.T) {
			name, db := newDB(t, shared)
			exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
			r := receiver.New()
			cfg := pipelineConfig{server: shared, db: name, start: "latest", url: receiver.Start(t, r)}.yaml(t, t.TempDir())
			if how == "sink-down-sigterm" {
				r.SetOutage(true)
			}
			p := startFerry(t, cfg)
			eventually(t, 30*time.Second, "the start position saved", func() bool {
				return strings.Contains(p.stderr.String(), "saved where this first run starts")
			})
			exec1(t, db, "INSERT INTO t VALUES (1)")
			switch how {
			case "sink-down-sigterm":
				eventually(t, 30*time.Second, "a delivery attempt", func() bool { return r.Attempts() > 0 })
				if code := p.stop(); code != 0 {
					t.Fatalf("exit code %d", code)
				}
				r.SetOutage(false)
			case "idle-sigkill":
				p.kill()
			default:
				if code := p.stop(); code != 0 {
					t.Fatalf("exit code %d", code)
				}
			}
			exec1(t, db, "INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (3)")
			code, out, _ := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db")
			if code != 0 || !strings.Contains(out, "db: mysql-bin.") {
				t.Fatalf("checkpoint show after the first run = %d %q", code, out)
			}
			p2 := startFerry(t, cfg)
			events := waitEvents(t, r, 3)
			got := map[string]bool{}
			for _, e := range events {
				got[fmt.Sprint(decode(t, e).After["id"])] = true
			}
			if len(got) != 3 || !got["1"] || !got["2"] || !got["3"] {
				t.Fatalf("rows after the restart: %v, want 1, 2 and 3", got)
			}
			if code := p2.stop(); code != 0 {
				t.Fatalf("exit code %d", code)
			}
		})
	}
}
