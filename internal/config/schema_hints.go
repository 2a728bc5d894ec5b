package config

import "github.com/ferry-cdc/ferry"

// What the schema cannot learn from the top-level Go types, whose checks
// live in the loader rather than in ferry tags (connector keys carry
// their own; see ferry.CheckConfig). Keys are schema paths: top-level keys
// as written ("log.level"), list items with "[]". The schema tests check
// every hint against the loader: each listed value is accepted, others are
// rejected at that key, each required key is reported missing.

var schemaFieldHints = map[string]ferry.FieldRules{
	"log.level":              {Enum: []string{"debug", "info", "warn", "error"}},
	"log.format":             {Enum: []string{"text", "json"}},
	"state.checkpoints.type": {Enum: []string{"embedded", "mysql"}},
	"ha.lease":               {Enum: []string{"mysql", "kubernetes"}},
}

// schemaRequired lists the keys a block must have.
var schemaRequired = map[string][]string{
	"":             {"sources", "sinks"},
	"transforms[]": {"name"},
}
