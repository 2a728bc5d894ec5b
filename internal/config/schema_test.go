package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
)

// The schema is checked with an independent validator against the loader
// itself: what one accepts or rejects, the other must too.

// minimalBlock is a valid block of a connector type, without `type`: the
// examples its configuration declares (ferry.Example).
func minimalBlock(section, typ string) map[string]any {
	reg := app.Registry{}
	newConfig := reg.NewSinkConfig
	if section == "sources" {
		newConfig = reg.NewSourceConfig
	}
	cfg, ok := newConfig(typ)
	if !ok {
		return nil
	}
	return ferry.Example(cfg)
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := config.Schema(app.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("ferry.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("ferry.schema.json")
	if err != nil {
		t.Fatalf("the schema does not compile as draft 2020-12: %v", err)
	}
	return s
}

// schemaMap is the generated schema as plain JSON values.
func schemaMap(t *testing.T) map[string]any {
	t.Helper()
	b, err := config.Schema(app.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// validate checks a configuration (parsed YAML) against the schema.
func validate(t *testing.T, s *jsonschema.Schema, doc any) error {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%v (YAML that has no JSON form?)", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

// load runs the real loader on doc (JSON is YAML) and returns its errors.
func load(t *testing.T, doc any) config.Errors {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ferry.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := config.WithLookupEnv(func(string) (string, bool) { return "", false })
	_, err = config.Load([]string{path}, app.Registry{}, noEnv)
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		t.Fatalf("load: %v", err)
	}
	return errs
}

func errorsAt(errs config.Errors, path string) []string {
	var out []string
	for _, e := range errs {
		if e.Path == path {
			out = append(out, e.Msg)
		}
	}
	return out
}

// baseConfig is a valid configuration; tests add to it.
func baseConfig() map[string]any {
	return map[string]any{
		"sources": map[string]any{"s": withType("mysql", minimalBlock("sources", "mysql"))},
		"sinks":   map[string]any{"out": map[string]any{"type": "stdout"}},
	}
}

func withType(typ string, block map[string]any) map[string]any {
	out := map[string]any{"type": typ}
	for k, v := range block {
		out[k] = v
	}
	return out
}

// place builds baseConfig with value at a schema path ("log.level",
// "sinks.kafka.sasl.mechanism", "transforms[].name"); connector blocks are
// named x. It returns the configuration and the loader's path of the key
// ("sinks.x.sasl.mechanism", "transforms[0].name").
func place(path string, value any) (map[string]any, string) {
	doc := baseConfig()
	segs := strings.Split(path, ".")
	cur, at := doc, []string{}
	if segs[0] == "sources" || segs[0] == "sinks" {
		block := withType(segs[1], minimalBlock(segs[0], segs[1]))
		doc[segs[0]].(map[string]any)["x"] = block
		cur, at, segs = block, []string{segs[0], "x"}, segs[2:]
	}
	for i, seg := range segs {
		key, list := strings.CutSuffix(seg, "[]")
		last := i == len(segs)-1
		var next map[string]any
		switch {
		case last && list:
			cur[key] = []any{value}
		case last:
			cur[key] = value
		case list:
			next = map[string]any{}
			cur[key] = []any{next}
		default:
			var ok bool
			if next, ok = cur[key].(map[string]any); !ok {
				next = map[string]any{}
				cur[key] = next
			}
		}
		if list {
			key += "[0]"
		}
		at = append(at, key)
		cur = next
	}
	return doc, strings.ReplaceAll(strings.Join(at, "."), ".[", "[")
}

func TestSchemaAcceptsExampleConfigs(t *testing.T) {
	s := compileSchema(t)
	files, err := filepath.Glob(filepath.Join(repoRoot, "configs", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations found (%v)", err)
	}
	examples := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		examples[f] = b
	}
	maps.Copy(examples, deployConfigs(t))
	maps.Copy(examples, readmeConfigs(t))
	for name, b := range examples {
		var doc any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// As written: ${...} references unexpanded, as an editor sees them.
		if err := validate(t, s, doc); err != nil {
			t.Errorf("%s does not validate against the schema:\n%v", name, err)
		}
	}
	t.Logf("validated %d configurations: %s", len(examples), strings.Join(slices.Sorted(maps.Keys(examples)), ", "))
}

// readmeConfigs are the README's yaml blocks that are whole
// configurations (with top-level sources and sinks).
func readmeConfigs(t *testing.T) map[string][]byte {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	blocks := regexp.MustCompile("(?ms)^```yaml\n(.*?)^```").FindAllSubmatch(b, -1)
	for i, m := range blocks {
		if regexp.MustCompile(`(?m)^sources:`).Match(m[1]) && regexp.MustCompile(`(?m)^sinks:`).Match(m[1]) {
			out[fmt.Sprintf("README.md yaml block %d", i+1)] = m[1]
		}
	}
	return out
}

// deployConfigs are the ferry*.yaml files under deploy/, and the ferry*.yaml
// entries of Kubernetes ConfigMaps there.
func deployConfigs(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	err := filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), "ferry") && !bytes.Contains(b, []byte("apiVersion:")) {
			out[path] = b
			return nil
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
			}
			if err := dec.Decode(&m); err != nil {
				break // end of the documents, or not a manifest
			}
			for key, v := range m.Data {
				if m.Kind == "ConfigMap" && strings.HasPrefix(key, "ferry") && strings.HasSuffix(key, ".yaml") {
					out[path+"#"+key] = []byte(v)
				}
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func TestSchemaAcceptsWhatLoaderAccepts(t *testing.T) {
	s := compileSchema(t)
	cases := map[string]string{
		"minimal": `{sources: {s: {type: mysql, addr: "h:1", user: u, server_id: 1}}, sinks: {out: {type: stdout}}}`,
		"every connector": `
sources:
  db: {type: mysql, addr: "h:1", user: u, server_id: "7", connect_timeout: 1.5s, include: shop.*, start: "mysql-bin.000003:4"}
  db2: {type: mysql, addr: "h:1", user: u, server_id: 8, start: 0-1-100}
  db3: {type: mysql, addr: "h:1", user: u, server_id: 9, start: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", snapshot_keys: {shop.t: [a, b]}}
  hooks: {type: webhook, path: /h, accept: [json, form], verify: {scheme: hmac-sha256, header: X-Sig, secret: s}, rate_limit: {requests_per_second: 2.5}}
sinks:
  k: {type: kafka, brokers: "b:9092", topic_expression: 'db + "." + table', compression: zstd, tls: {enable: true}, sasl: {mechanism: PLAIN, username: u, password: p}}
  h: {type: http, url: "https://x/e", method: put, headers: {X-Api-Key: 12345}, retry: {max_attempts: 3, initial_backoff: 250ms, max_backoff: 1h30m}}
  e: {type: eventbridge, region: us-east-1, detail: event}
  d: {type: discard}
transforms:
  - {name: r, from: db, when: 'true', event: {type: '"t"', extensions: {a: 'b'}}, to: k}
  - {name: drop-all, drop: true}
  - {name: ob, outbox: {table: shop.outbox, headers: {trace: trace_col}}, to: [h]}
log: {level: debug, format: json}
admin: {listen: off, max_lag: 0}
pipeline: {max_in_flight: 5, dead_letter_sink: d}
defaults: {type_prefix: com.example, to: [h]}
`,
		"outbound webhooks": `
sources: {s: {type: mysql, addr: "h:1", user: u, server_id: 1}}
sinks:
  erp:
    type: http
    url: https://erp.internal/hooks
    sign: {scheme: standard-webhooks, secret: "${WHSEC:-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}", secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw]}
    oauth2: {token_url: "https://auth.internal/oauth/token", client_id: ferry, client_secret: s, scopes: [events.write], endpoint_params: {audience: erp}, auth_style: params}
  legacy: {type: http, url: "https://crm/in", sign: {scheme: hmac, secret: k, header: X-Signature, algorithm: sha512, encoding: base64, prefix: "sha512=", timestamp_header: X-Timestamp}}
`,
		"env references": `
state: {dir: "${STATE:-/tmp/x}", checkpoint_interval: "${CI:-1s}"}
pipeline: {max_in_flight: "${MAX:-5}"}
sources: {s: {type: mysql, addr: "${ADDR:-h:1}", user: u, server_id: "${ID:-4101}", flavor: "${FLAVOR:-auto}"}}
sinks: {out: {type: kafka, brokers: ["${B:-b:1}"], topic: t, tls: {enable: "${TLS:-false}"}}}
`,
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			var doc any
			if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			if errs := load(t, doc); errs != nil {
				t.Fatalf("the loader rejects the case itself: %v", errs)
			}
			if err := validate(t, s, doc); err != nil {
				t.Fatalf("the loader accepts it, the schema does not:\n%v", err)
			}
		})
	}
}

// TestSchemaRejectsWhatLoaderRejects: every case breaks one key; the schema
// and the loader must both reject it, the loader at that key.
func TestSchemaRejectsWhatLoaderRejects(t *testing.T) {
	s := compileSchema(t)
	cases := []struct {
		path  string // schema path, as for place
		value any
	}{
		{"sorces", map[string]any{}},
		{"state.dir", map[string]any{"a": 1}},
		{"state.checkpoint_interval", 5},
		{"state.checkpoint_interval", "5 seconds"},
		{"admin.lsten", "x:1"},
		{"log.level", "verbose"},
		{"pipeline.max_in_flight", "many"},
		{"pipeline.max_in_flight", 1.5},
		{"tracing.sample_ratio", "half"},
		{"transforms[].evnt", map[string]any{}},
		{"transforms[].drop", "yes"},
		{"transforms[].to", map[string]any{"a": "b"}},
		{"sources.mysql.server_id", "abc"},
		{"sources.mysql.server_id", -1},
		{"sources.mysql.server_id", 4294967296},
		{"sources.mysql.connect_timeout", 10},
		{"sources.mysql.include", map[string]any{"a": "b"}},
		{"sources.mysql.snapshot", "always"},
		{"sources.mysql.start", "yesterday"},
		{"sources.mysql.passwd", "x"},
		{"sources.webhook.max_body_bytes", 1.5},
		{"sources.webhook.verify", "hmac"},
		{"sources.webhook.accept[]", "yaml"},
		{"sources.webhook.buffer.max_entris", 1},
		{"sinks.http.mode", "batched"},
		{"sinks.http.concurrency", "lots"},
		{"sinks.http.headers", []any{"a", "b"}},
		{"sinks.kafka.brokers", map[string]any{"a": 1}},
		{"sinks.kafka.compression", "brotli"},
		{"sinks.kafka.timeout", 30},
		{"sinks.kafka.tls.enable", "yes"},
		{"sinks.kafka.sasl.mechanism", "OAUTHBEARER"},
		{"sources.kafka.sasl.mechanism", "GSSAPI"}, // the sink has it, with client: sarama
		{"sinks.eventbridge.concurrency", []any{1}},
		{"sinks.eventbridge.detail", "payload"},
		{"sinks.stdout.pretty", true},
		{"sinks.discard.x", 1},
		{"sinks.http.retry.max_attempts", "x"},
		{"sinks.http.retry.max_backof", "1s"},
	}
	for _, c := range cases {
		doc, at := place(c.path, c.value)
		if len(errorsAt(load(t, doc), at)) == 0 {
			t.Errorf("%s = %v: the loader reports nothing at %s; the case is wrong", c.path, c.value, at)
		}
		if err := validate(t, s, doc); err == nil {
			t.Errorf("%s = %v: the loader rejects it, the schema accepts it", c.path, c.value)
		}
	}
	// A block that breaks the rule of one topic or the other.
	doc := baseConfig()
	doc["sinks"].(map[string]any)["k"] = map[string]any{"type": "kafka", "brokers": "b:1", "topic": "t", "topic_expression": "db"}
	if validate(t, s, doc) == nil || len(load(t, doc)) == 0 {
		t.Error("kafka with both topic and topic_expression: want both the schema and the loader to reject it")
	}
}

// TestSchemaHintsMatchLoader checks every enum value against the loader:
// each listed value is accepted at its key, another is rejected there; each
// required key, when missing, is reported by both.
func TestSchemaHintsMatchLoader(t *testing.T) {
	s := compileSchema(t)
	enums := enumsOf(schemaMap(t), "")
	if len(enums) == 0 {
		t.Fatal("the schema has no enums")
	}
	// Keys that are only checked in the presence of others.
	context := map[string]map[string]any{
		"sources.webhook.verify.algorithm": {"scheme": "hmac", "secret": "s", "header": "X-Sig"},
		"sources.webhook.verify.encoding":  {"scheme": "hmac", "secret": "s", "header": "X-Sig"},
	}
	for path, values := range enums {
		for _, v := range append(values, "not-a-value") {
			doc, at := place(path, v)
			if ctx, ok := context[path]; ok {
				i := strings.LastIndex(path, ".")
				doc, at = place(path[:i], withValue(ctx, path[i+1:], v))
				at += path[i:]
			}
			loaderErrs := errorsAt(load(t, doc), at)
			schemaErr := validate(t, s, doc)
			if v == "not-a-value" {
				if len(loaderErrs) == 0 || schemaErr == nil {
					t.Errorf("%s = %q: loader errors %q, schema error %v; want both to reject it", path, v, loaderErrs, schemaErr)
				}
				continue
			}
			if len(loaderErrs) > 0 || schemaErr != nil {
				t.Errorf("%s = %q is in the schema's enum: loader errors %q, schema error %v", path, v, loaderErrs, schemaErr)
			}
		}
	}
	reg := app.Registry{}
	for section, types := range map[string][]string{"sources": reg.SourceTypes(), "sinks": reg.SinkTypes()} {
		for _, typ := range types {
			block := schemaBlock(t, schemaMap(t), section, typ)
			required, _ := block["required"].([]any)
			for _, k := range required[1:] { // after type
				doc, at := place(section+"."+typ+"."+k.(string), nil)
				delete(doc[section].(map[string]any)["x"].(map[string]any), k.(string))
				if len(errorsAt(load(t, doc), at)) == 0 || validate(t, s, doc) == nil {
					t.Errorf("%s without %s: want both the loader and the schema to reject it", section+"."+typ, k)
				}
			}
		}
	}
}

func withValue(m map[string]any, k string, v any) map[string]any {
	out := maps.Clone(m)
	out[k] = v
	return out
}

// enumsOf finds the enums of string keys in the schema, by schema path.
func enumsOf(node map[string]any, path string) map[string][]string {
	out := map[string][]string{}
	for _, l := range closedProps(node, path) {
		maps.Copy(out, enumsOf(l.node, l.path))
	}
	if items, ok := node["items"].(map[string]any); ok {
		maps.Copy(out, enumsOf(items, path+"[]"))
	}
	alts, _ := node["anyOf"].([]any)
	for _, a := range alts {
		am := a.(map[string]any)
		if e, ok := am["enum"].([]any); ok && path != "" {
			for _, x := range e {
				out[path] = append(out[path], x.(string))
			}
		}
		if am["type"] == "array" {
			maps.Copy(out, enumsOf(am, path))
		}
	}
	return out
}

type located struct {
	node map[string]any
	path string
}

// closedProps are the properties of node, with connector blocks under
// sources.TYPE and sinks.TYPE.
func closedProps(node map[string]any, path string) map[string]located {
	out := map[string]located{}
	props, _ := node["properties"].(map[string]any)
	for k, v := range props {
		if path == "" && (k == "sources" || k == "sinks") {
			branches := v.(map[string]any)["additionalProperties"].(map[string]any)["allOf"].([]any)
			for _, b := range branches {
				then := b.(map[string]any)["then"].(map[string]any)
				typ := then["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
				out[k+"."+typ] = located{then, k + "." + typ}
			}
			continue
		}
		out[k] = located{v.(map[string]any), join(path, k)}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func schemaBlock(t *testing.T, root map[string]any, section, typ string) map[string]any {
	t.Helper()
	l, ok := closedProps(root, "")[section+"."+typ]
	if !ok {
		t.Fatalf("the schema has no %s block of type %s", section, typ)
	}
	return l.node
}

var knownRe = regexp.MustCompile(`\(known: ([^)]*)\)`)

// TestSchemaHasEveryLoaderKey puts an unknown key into every closed mapping
// of the schema and compares the loader's list of the keys it knows there
// with the schema's properties.
func TestSchemaHasEveryLoaderKey(t *testing.T) {
	checked := 0
	var walk func(node map[string]any, path string)
	walk = func(node map[string]any, path string) {
		if node["additionalProperties"] == false {
			checked++
			var want []string
			for k := range node["properties"].(map[string]any) {
				block := strings.Count(path, ".") == 1 && (strings.HasPrefix(path, "sources.") || strings.HasPrefix(path, "sinks."))
				if block && (k == "type" || (k == "retry" && strings.HasPrefix(path, "sinks."))) {
					continue // taken out before the connector's own keys are decoded
				}
				want = append(want, k)
			}
			sort.Strings(want)
			doc, at := place(join(path, "zz_unknown"), 1)
			msgs := errorsAt(load(t, doc), at)
			if len(msgs) != 1 {
				t.Errorf("%s: want one unknown-key error at %s, got %q", path, at, msgs)
				return
			}
			var known []string
			if m := knownRe.FindStringSubmatch(msgs[0]); m != nil {
				known = strings.Split(m[1], ", ")
			} else if !strings.Contains(msgs[0], "takes no keys") {
				t.Errorf("%s: unexpected message %q", path, msgs[0])
			}
			if !slices.Equal(known, want) {
				t.Errorf("%s: the loader knows the keys %q, the schema %q", path, known, want)
			}
		}
		for _, l := range closedProps(node, path) {
			walk(l.node, l.path)
		}
		if items, ok := node["items"].(map[string]any); ok {
			walk(items, path+"[]")
		}
	}
	walk(schemaMap(t), "")
	if checked < 20 {
		t.Fatalf("only %d mappings checked", checked)
	}
}

// TestSchemaHasEveryConnectorType: the type discriminator lists exactly
// the registry's types, each with its block, and the loader agrees.
func TestSchemaHasEveryConnectorType(t *testing.T) {
	root := schemaMap(t)
	reg := app.Registry{}
	for section, types := range map[string][]string{"sources": reg.SourceTypes(), "sinks": reg.SinkTypes()} {
		typeProp := root["properties"].(map[string]any)[section].(map[string]any)["additionalProperties"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)
		var enum []string
		for _, e := range typeProp["enum"].([]any) {
			enum = append(enum, e.(string))
		}
		if !slices.Equal(enum, types) {
			t.Errorf("%s: the schema's types %q, the registry's %q", section, enum, types)
		}
		for _, typ := range types {
			schemaBlock(t, root, section, typ)
			// The declared examples make a block both accept.
			doc := baseConfig()
			doc[section].(map[string]any)["x"] = withType(typ, minimalBlock(section, typ))
			if errs := load(t, doc); errs != nil {
				t.Errorf("%s type %s: the loader rejects the block of its examples: %v", section, typ, errs)
			}
			if err := validate(t, compileSchema(t), doc); err != nil {
				t.Errorf("%s type %s: the schema rejects the block of its examples: %v", section, typ, err)
			}
			c, _ := reg.NewSinkConfig(typ)
			if section == "sources" {
				c, _ = reg.NewSourceConfig(typ)
			}
			if err := ferry.CheckTags(c); err != nil {
				t.Errorf("%s type %s: %v", section, typ, err)
			}
		}
		doc := baseConfig()
		doc[section].(map[string]any)["x"] = map[string]any{"type": "zz"}
		msgs := errorsAt(load(t, doc), section+".x.type")
		if len(msgs) != 1 || !strings.Contains(msgs[0], "(known: "+strings.Join(types, ", ")+")") {
			t.Errorf("%s: the loader's unknown-type error %q does not list %q", section, msgs, types)
		}
	}
}

// TestSchemaHintsAreUsed finds hints whose key was renamed or removed.
func TestSchemaHintsAreUsed(t *testing.T) {
	used, err := config.SchemaHintsUsed(app.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range config.SchemaHintPaths() {
		if !used[p] {
			t.Errorf("schema hint %q matches no key: update schema_hints.go", p)
		}
	}
}
