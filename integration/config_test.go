package integration

import (
	"fmt"
	"testing"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

// pipelineConfig is a config for one mysql source streaming db.* to an HTTP
// receiver from start.
type pipelineConfig struct {
	server   *mariadbtest.Server
	addr     string // the source's addr; default server.Addr
	db       string
	start    string
	url      string // the "recv" HTTP sink's; empty: no such sink (then set to and sinks)
	to       string // defaults.to; default recv
	mode     string
	serverID uint32
	extra    string // appended to the source block
	admin    string // admin.listen; default off
	sinks    string // appended to the sinks block
	state    string // appended to the state block
	top      string // more top-level blocks (e.g. ha)
}

func (c pipelineConfig) yaml(t *testing.T, dir string) string {
	if c.mode == "" {
		c.mode = "binary"
	}
	if c.serverID == 0 {
		c.serverID = nextServerID()
	}
	if c.admin == "" {
		c.admin = "off"
	}
	if c.addr == "" {
		c.addr = c.server.Addr
	}
	if c.to == "" {
		c.to = "recv"
	}
	if c.url != "" {
		c.sinks = httpSink("recv", c.url, c.mode) + c.sinks
	}
	return writeConfig(t, dir, fmt.Sprintf(`state:
  dir: %s/state
  checkpoint_interval: 50ms
%s%sadmin:
  listen: %s
pipeline:
  shutdown_timeout: 10s
defaults:
  type_prefix: com.example
  to: [%s]
sources:
  db:
    type: mysql
    addr: %s
    user: root
    server_id: %d
    include: ["%s.*"]
    start: %s
    startup_timeout: 5s
%s
sinks:
%s`, dir, c.state, c.top, c.admin, c.to, c.addr, c.serverID, c.db, c.start, c.extra, c.sinks))
}

// httpSink is the config block of an HTTP sink with a quick retry.
func httpSink(name, url, mode string) string {
	return fmt.Sprintf("  %s:\n    type: http\n    url: %s\n    mode: %s\n    retry: {initial_backoff: 20ms, max_backoff: 200ms}\n", name, url, mode)
}
