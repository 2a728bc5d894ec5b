package config

import (
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// schemaTableSuffix is state.SchemaTableSuffix (config does not import
// state).
const schemaTableSuffix = "_schema_history"

// identRe is a MySQL database or table name Ferry accepts unquoted-safe.
var identRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// checkHA validates `ha:` and `state.checkpoints:` and fills their derived
// defaults (the lock's source, the lock name).
func checkHA(cfg *Config, add func(path, format string, args ...any)) {
	if h := cfg.HA; h != nil {
		checkLease(cfg, h, add)
	}
	checkCheckpoints(cfg, add)
	h, c := cfg.HA, cfg.State.Checkpoints
	switch {
	case h == nil:
	case c.Type == "embedded":
		add("ha", "needs checkpoints the replicas share: set state.checkpoints.type: mysql (a table)")
	case h.Lease == "mysql" && (c.Addr != "" || c.Source != h.Source):
		// Checkpoint writes are fenced on the lock's own session.
		add("state.checkpoints", "with ha.lease mysql the checkpoint table must be on the lock's server: name source %s or leave source and addr out", h.Source)
	}
}

func checkLease(cfg *Config, h *HA, add func(path, format string, args ...any)) {
	if h.Lease == "" {
		h.Lease = "mysql"
	}
	if h.RenewInterval == 0 {
		h.RenewInterval = time.Second
	}
	if h.RenewInterval < 100*time.Millisecond {
		add("ha.renew_interval", "must be at least 100ms")
	}
	switch h.Lease {
	case "mysql":
		if name, ok := mysqlSource(cfg, h.Source, "ha.source", add); ok {
			h.Source = name
			if h.Name == "" {
				h.Name = "ferry-" + name
			}
		}
		if len(h.Name) > 64 {
			add("ha.name", "must be at most 64 characters (a MySQL lock name)")
		}
	case "kubernetes":
		if h.Name == "" {
			h.Name = "ferry"
		}
		k := &h.Kubernetes
		if k.LeaseDuration == 0 {
			k.LeaseDuration = 15 * time.Second
		}
		if k.LeaseDuration < 2*h.RenewInterval || k.LeaseDuration%time.Second != 0 {
			add("ha.kubernetes.lease_duration", "must be whole seconds and at least twice ha.renew_interval")
		}
	} // another lease is refused by its ferry tag
}

func checkCheckpoints(cfg *Config, add func(path, format string, args ...any)) {
	c := &cfg.State.Checkpoints
	if c.Type != "mysql" {
		return // embedded, or refused by its ferry tag
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			add("state.checkpoints.addr", "must be host:port: %v", err)
		}
		if c.User == "" {
			add("state.checkpoints.user", "is required with addr")
		}
		if c.Source != "" {
			add("state.checkpoints.source", "give either source or addr, not both")
		}
	} else {
		want := c.Source
		if want == "" && cfg.HA != nil && cfg.HA.Lease == "mysql" {
			want = cfg.HA.Source
		}
		if name, ok := mysqlSource(cfg, want, "state.checkpoints.source", add); ok {
			c.Source = name
		}
	}
	if !identRe.MatchString(c.Database) {
		add("state.checkpoints.database", "must name the database of the checkpoint table (letters, digits, _)")
	}
	switch {
	case !identRe.MatchString(c.Table):
		add("state.checkpoints.table", "must be a table name of letters, digits and _")
	case len(c.Table) > 64-len(schemaTableSuffix):
		add("state.checkpoints.table", "must be at most %d characters: the schema history table next to it is named %s%s",
			64-len(schemaTableSuffix), c.Table, schemaTableSuffix)
	}
}

// onMySQLServer reports whether s is a source whose server can hold the
// checkpoint table and the HA lock.
func onMySQLServer(s *Source) bool {
	_, ok := s.Spec.(ferry.MySQLServer)
	return ok
}

// mysqlSource returns the named mysql source, or the only one when name is
// empty.
func mysqlSource(cfg *Config, name, path string, add func(path, format string, args ...any)) (string, bool) {
	var mysqls []string
	for _, n := range cfg.SourceNames() {
		if onMySQLServer(cfg.Sources[n]) {
			mysqls = append(mysqls, n)
		}
	}
	switch {
	case name != "":
		if s, ok := cfg.Sources[name]; !ok || !onMySQLServer(s) {
			add(path, "must name a mysql source (mysql sources: %s)", strings.Join(mysqls, ", "))
			return "", false
		}
		return name, true
	case len(mysqls) == 1:
		return mysqls[0], true
	case len(mysqls) == 0:
		add(path, "needs a mysql source whose server to use, and none is configured")
	default:
		add(path, "is required: name one of the mysql sources (%s)", strings.Join(mysqls, ", "))
	}
	return "", false
}
