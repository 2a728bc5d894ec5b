package webhook

import "github.com/ferry-cdc/ferry"

// What the application asks a webhook configuration, through the root
// package's interfaces, for checks that span the configuration.
var (
	_ ferry.Claimer        = (*Config)(nil)
	_ ferry.HeaderScrubber = (*Config)(nil)
)

// Claims implements ferry.Claimer: sources may share a listener, but one
// path on it is served by one source (register refuses a second at run
// time; this makes it a configuration error with a position).
func (c *Config) Claims() []ferry.Claim {
	return []ferry.Claim{{Resource: "webhook route " + c.Listen + c.Path, Field: "path",
		Use: "serves " + c.Path + " on " + c.Listen}}
}
