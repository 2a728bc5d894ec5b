package webhook

import "github.com/ferry-cdc/ferry"

// What the application asks a webhook configuration, through the root
// package's interfaces, for checks that span the configuration.
var (
	_ ferry.Claimer        = (*Config)(nil)
	_ ferry.HeaderScrubber = (*Config)(nil)
	_ ferry.EveryReplica   = (*Config)(nil)
)

// RunsOnEveryReplica implements ferry.EveryReplica: a request is journaled
// in the state.dir of the replica that accepted it and delivered by that
// replica, and a standby refusing requests would only turn a Service's
// retries into errors.
func (c *Config) RunsOnEveryReplica() bool { return true }

// Claims implements ferry.Claimer: sources may share a listener, but one
// path on it is served by one source (register refuses a second at run
// time; this makes it a configuration error with a position).
func (c *Config) Claims() []ferry.Claim {
	return []ferry.Claim{{Resource: "webhook route " + c.Listen + c.Path, Field: "path",
		Use: "serves " + c.Path + " on " + c.Listen}}
}
