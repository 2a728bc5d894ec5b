package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestCheckpointCommands: set moves the position (and running from it
// re-reads from there), show prints it, reset makes the source start at its
// configured start again, and a running ferry keeps the store to itself.
func TestCheckpointCommands(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (2)")
	mid := binlogPos(t, shared)
	exec1(t, db, "INSERT INTO t VALUES (3)")
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())

	ferry := func(args ...string) (int, string, string) {
		return runFerry(t, 30*time.Second, append(args, "-c", cfg)...)
	}
	if code, out, _ := ferry("checkpoint", "show", "--source", "db"); code != 0 || !strings.Contains(out, "no checkpoint") {
		t.Fatalf("show before any run: %d %q", code, out)
	}
	if code, _, errOut := ferry("checkpoint", "set", "--source", "db", "not-a-position"); code != 2 || !strings.Contains(errOut, "invalid position") {
		t.Fatalf("set garbage: %d %q", code, errOut)
	}
	if code, _, errOut := ferry("checkpoint", "show", "--source", "nope"); code != 2 || !strings.Contains(errOut, `no source named "nope"`) {
		t.Fatalf("show unknown source: %d %q", code, errOut)
	}
	if code, out, _ := ferry("checkpoint", "set", "--source", "db", mid); code != 0 || !strings.Contains(out, mid) {
		t.Fatalf("set: %d %q", code, out)
	}
	p := startFerry(t, cfg)
	events := waitEvents(t, r, 1)
	if len(events) != 1 || decode(t, events[0]).After["id"] != float64(3) {
		t.Fatalf("after set to %s got %d events, first %s", mid, len(events), events[0].Data())
	}
	if code, _, errOut := ferry("checkpoint", "show", "--source", "db"); code != 1 || !strings.Contains(errOut, "in use by another ferry process") {
		t.Fatalf("show while running: %d %q", code, errOut)
	}
	p.stop()
	if code, out, _ := ferry("checkpoint", "reset", "--source", "db"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("reset: %d %q", code, out)
	}
	p = startFerry(t, cfg)
	waitEvents(t, r, 4) // from the configured start again: 1, 2, 3 once more
	p.stop()
}

// TestAdminEndpoints checks /healthz, /readyz and /status of a running ferry.
func TestAdminEndpoints(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	r := receiver.New()
	admin := freeAddr(t)
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	cfgText := strings.Replace(readFile(t, cfg), "listen: off", "listen: "+admin, 1)
	cfg = writeConfig(t, dir, cfgText)
	p := startFerry(t, cfg)
	waitEvents(t, r, 1)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != 200 {
			t.Errorf("%s = %d %s", path, code, body)
		}
	}
	var st struct {
		Running bool
		Sources map[string]struct {
			Read       uint64 `json:"changes_read"`
			Checkpoint string `json:"checkpoint"`
		}
		Sinks map[string]struct{ Delivered uint64 }
	}
	eventually(t, 10*time.Second, "a checkpoint in /status", func() bool {
		_, body := get("/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("/status: %v: %s", err, body)
		}
		return st.Sources["db"].Checkpoint != ""
	})
	if !st.Running || st.Sources["db"].Read != 1 || st.Sinks["recv"].Delivered != 1 {
		t.Fatalf("/status = %+v", st)
	}
	p.stop()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
