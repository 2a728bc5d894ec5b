package config

// SchemaHintsUsed reports which hint paths the schema applied, for the
// test that finds stale hints.
func SchemaHintsUsed(reg Registry) (map[string]bool, error) {
	used, _, err := schema(reg)
	return used, err
}

// SchemaHintPaths are every hint's path.
func SchemaHintPaths() []string {
	var out []string
	for p := range schemaRequired {
		out = append(out, p)
	}
	return out
}

// SchemaDocs are the doc comments compiled into the schema.
var SchemaDocs = schemaDocs

// EmptyFileDefaults is the configuration of an empty file, before validation.
var EmptyFileDefaults = defaults
