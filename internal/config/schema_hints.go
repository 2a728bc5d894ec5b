package config

// What the schema cannot learn from the Go types or their ferry tags:
// blocks that are not struct fields (the top level's sources and sinks,
// which the loader decodes by hand) and required keys the loader checks
// with messages of its own (a rule's name). Keys are schema paths (list
// items with "[]"). The schema tests check every hint against the loader.

// schemaRequired lists the keys a block must have.
var schemaRequired = map[string][]string{
	"":             {"sources", "sinks"},
	"transforms[]": {"name"},
}
