package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/config"
)

const haBase = `sources:
  db: {type: mysql, addr: 127.0.0.1:1, user: u, password: pw-s3cret, server_id: 7, include: [shop.*]}
  db2: {type: mysql, addr: 127.0.0.2:1, user: u, server_id: 8}
sinks:
  out: {type: stdout}
defaults: {to: [out]}
`

func loadString(t *testing.T, body string) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load([]string{p})
	return p, err
}

func TestHAConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, after the file name
	}{
		{"ha needs a shared store", haBase + "ha: {lease: mysql, source: db}\n",
			[]string{":7:", "ha: needs checkpoints the replicas share"}},
		{"two mysql sources need ha.source", haBase + "ha: {lease: mysql}\nstate: {checkpoints: {type: mysql, database: ferry}}\n",
			[]string{"ha.source: is required: name one of the mysql sources (db, db2)"}},
		{"unknown lease", haBase + "ha: {lease: etcd}\nstate: {checkpoints: {type: mysql, source: db, database: ferry}}\n",
			[]string{"ha.lease: must be mysql or kubernetes"}},
		{"table on another server than the lock", haBase + "ha: {source: db}\nstate: {checkpoints: {type: mysql, source: db2, database: ferry}}\n",
			[]string{"state.checkpoints: with ha.lease mysql the checkpoint table must be on the lock's server"}},
		{"bad database name", haBase + "state: {checkpoints: {type: mysql, source: db, database: 'a-b'}}\n",
			[]string{"state.checkpoints.database: must name the database"}},
		{"kubernetes duration", haBase + "ha: {lease: kubernetes, renew_interval: 10s, kubernetes: {lease_duration: 15s}}\nstate: {checkpoints: {type: mysql, source: db, database: ferry}}\n",
			[]string{"ha.kubernetes.lease_duration: must be whole seconds and at least twice"}},
		{"unknown key", haBase + "ha: {lease: mysql, source: db, ttl: 3s}\nstate: {checkpoints: {type: mysql, database: ferry}}\n",
			[]string{"ha.ttl: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadString(t, tc.yaml)
			if err == nil {
				t.Fatal("loaded without error")
			}
			msg := err.Error()
			for _, w := range append(tc.want, p+":") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "pw-s3cret") {
				t.Errorf("error shows the password: %s", msg)
			}
		})
	}
}

// TestHAConfigDefaults: the lock's source and name are derived, the
// checkpoint table defaults to the lock's server, and sources on that
// server never capture the checkpoint table.
func TestHAConfigDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ferry.yaml")
	body := strings.Replace(haBase, "  db2: {type: mysql, addr: 127.0.0.2:1, user: u, server_id: 8}\n", "", 1) +
		"ha: {lease: mysql}\nstate: {checkpoints: {type: mysql, database: ferry}}\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HA.Source != "db" || cfg.HA.Name != "ferry-db" || cfg.HA.RenewInterval.Seconds() != 1 {
		t.Errorf("ha = %+v", cfg.HA)
	}
	cp := cfg.State.Checkpoints
	if cp.Source != "db" || cp.Table != "ferry_checkpoints" {
		t.Errorf("checkpoints = %+v", cp)
	}
	ex := cfg.Sources["db"].Spec.(*mysql.Config).Exclude
	if !slices.Equal(ex, []string{"ferry.ferry_checkpoints", "ferry.ferry_checkpoints_schema_history"}) {
		t.Errorf("exclude = %v, want the checkpoint table and its schema history table", ex)
	}
}

func TestCheckReload(t *testing.T) {
	load := func(body string) *config.Config {
		p := filepath.Join(t.TempDir(), "ferry.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load([]string{p})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cur := load(haBase)
	more := strings.Replace(haBase, "  out: {type: stdout}\n", "  out: {type: stdout}\n  extra: {type: stdout}\n", 1)
	if err := CheckReload(cur, load(more)); err != nil {
		t.Errorf("adding a sink: %v", err)
	}
	err := CheckReload(cur, load(haBase+"state: {dir: /tmp/elsewhere}\n"))
	if err == nil || !strings.Contains(err.Error(), ":7:") || !strings.Contains(err.Error(), "state: cannot change while running") {
		t.Errorf("changing state.dir: %v", err)
	}
}
