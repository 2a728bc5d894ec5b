package config

// What the schema cannot learn from the Go types, because only the
// Validate methods know it. Keys are schema paths: top-level keys as
// written ("log.level"), connector keys under their type
// ("sinks.kafka.compression"), list items with "[]". The schema tests
// check every hint against the loader: each listed value is accepted,
// others are rejected at that key, each required key is reported missing.

// fieldHint lists the values a string key takes.
type fieldHint struct {
	Enum []string
	// Other, when set, is a pattern for the other values allowed
	// (positions for a mysql source's start).
	Other string
}

var schemaFieldHints = map[string]fieldHint{
	"log.level":              {Enum: []string{"debug", "info", "warn", "error"}},
	"log.format":             {Enum: []string{"text", "json"}},
	"state.checkpoints.type": {Enum: []string{"embedded", "mysql"}},
	"ha.lease":               {Enum: []string{"mysql", "kubernetes"}},

	"sources.mysql.flavor":   {Enum: []string{"auto", "mysql", "mariadb"}},
	"sources.mysql.snapshot": {Enum: []string{"never", "initial"}},
	"sources.mysql.tls.mode": {Enum: []string{"disabled", "required", "verify-ca", "verify-full"}},
	// FILE:POS (mysql-bin.000003:4) or a GTID set (0-1-100, uuid:1-100).
	"sources.mysql.start": {Enum: []string{"latest", "earliest"}, Other: `^\s*\S+:[0-9]+\s*$|^\s*[0-9]+-[0-9]+-[0-9]+|^\s*[0-9a-fA-F-]{36}:`},

	"sources.webhook.accept[]":         {Enum: []string{"json", "form", "xml", "text", "cloudevents"}},
	"sources.webhook.form":             {Enum: []string{"structured", "raw"}},
	"sources.webhook.xml":              {Enum: []string{"structured", "raw"}},
	"sources.webhook.ack":              {Enum: []string{"durable", "delivered"}},
	"sources.webhook.verify.scheme":    {Enum: []string{"none", "hmac", "hmac-sha1", "hmac-sha256", "hmac-sha512", "github", "stripe", "standard-webhooks", "shopify", "basic", "bearer", "api-key"}},
	"sources.webhook.verify.algorithm": {Enum: []string{"sha1", "sha256", "sha512"}},
	"sources.webhook.verify.encoding":  {Enum: []string{"hex", "base64"}},

	"sinks.http.mode":            {Enum: []string{"binary", "structured", "batch"}},
	"sinks.http.method":          {Enum: []string{"POST", "PUT"}, Other: `^([Pp][Oo][Ss][Tt]|[Pp][Uu][Tt])$`}, // any case
	"sinks.kafka.key":            {Enum: []string{"partitionkey", "subject", "id", "none"}},
	"sinks.kafka.mode":           {Enum: []string{"binary", "structured"}},
	"sinks.kafka.compression":    {Enum: []string{"none", "gzip", "snappy", "lz4", "zstd"}},
	"sinks.kafka.sasl.mechanism": {Enum: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}},
	"sinks.eventbridge.detail":   {Enum: []string{"data", "event"}},
}

// schemaRequired lists the keys a block must have.
var schemaRequired = map[string][]string{
	"":                  {"sources", "sinks"},
	"transforms[]":      {"name"},
	"sources.mysql":     {"addr", "user", "server_id"},
	"sources.webhook":   {"path"},
	"sinks.http":        {"url"},
	"sinks.kafka":       {"brokers"},
	"sinks.eventbridge": {"region"},
}

// schemaExclusive lists keys of which a block needs exactly one.
var schemaExclusive = map[string][]string{
	"sinks.kafka": {"topic", "topic_expression"},
}
