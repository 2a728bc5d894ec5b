package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// secretMarkers are what a secret file holds in TestNoFieldLeaksItsSecret:
// one that no field accepts, one that looks like a plain token (accepted
// by names and expressions, refused by numbers, addresses and enums).
var secretMarkers = []string{"MARKER-9f31c7 not/a:valid value", "MARKER9f31c7token"}

// TestNoFieldLeaksItsSecret puts ${file:secret} into every scalar field
// the configuration schema lists (top-level blocks, every source and sink
// type, rules), one field at a time, and loads and compiles the result:
// whatever is refused, no error may quote the file's content.
func TestNoFieldLeaksItsSecret(t *testing.T) {
	raw, err := os.ReadFile("../../configs/ferry.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var fields []fieldCase
	props := schema["properties"].(map[string]any)
	for _, top := range []string{"admin", "defaults", "ha", "log", "pipeline", "state", "tracing"} {
		walkSchema(props[top].(map[string]any), []string{top}, func(path []string, leaf string) {
			fields = append(fields, fieldCase{path: path, leaf: leaf})
		})
	}
	for _, section := range []string{"sources", "sinks"} {
		for _, branch := range props[section].(map[string]any)["additionalProperties"].(map[string]any)["allOf"].([]any) {
			b := branch.(map[string]any)
			typ := b["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
			walkSchema(b["then"].(map[string]any), nil, func(path []string, leaf string) {
				fields = append(fields, fieldCase{section: section, typ: typ, path: path, leaf: leaf})
			})
		}
	}
	rule := props["transforms"].(map[string]any)["items"].(map[string]any)
	walkSchema(rule, nil, func(path []string, leaf string) {
		fields = append(fields, fieldCase{section: "transforms", path: path, leaf: leaf})
	})
	if len(fields) < 100 {
		t.Fatalf("found only %d fields in the schema; the walk is broken", len(fields))
	}
	dir := t.TempDir()
	refused := 0
	for _, marker := range secretMarkers {
		if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(marker+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			file := filepath.Join(dir, "ferry.yaml")
			if err := os.WriteFile(file, []byte(f.config()), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load([]string{file})
			if err == nil {
				_, err = BuildEngine(cfg)
			}
			if err == nil {
				continue
			}
			refused++
			if strings.Contains(err.Error(), "9f31c7") {
				t.Errorf("%s: the error quotes the secret:\n%v", f, err)
			}
		}
	}
	t.Logf("%d fields, %d refusals checked", len(fields), refused)
}

// fieldCase is one field to put the secret into.
type fieldCase struct {
	section, typ string   // "sources"/"sinks" and the connector type; "transforms"; "" for top-level
	path         []string // keys down to the field
	leaf         string   // "scalar", "list" or "map"
}

func (f fieldCase) String() string {
	return strings.TrimLeft(f.section+"."+f.typ+"."+strings.Join(f.path, "."), ".")
}

// config is a minimal configuration with the secret in f's field.
func (f fieldCase) config() string {
	value := `"${file:secret}"`
	switch f.leaf {
	case "list":
		value = "[" + value + "]"
	case "map":
		value = "{k: " + value + "}"
	}
	nested := value
	for i := len(f.path) - 1; i >= 0; i-- {
		nested = "{" + f.path[i] + ": " + nested + "}"
	}
	base := "sources:\n  w: {type: webhook, listen: '127.0.0.1:0', path: /x}\nsinks:\n  o: {type: stdout}\ndefaults: {to: [o]}\n"
	switch f.section {
	case "":
		return base + strings.TrimSuffix(strings.TrimPrefix(nested, "{"), "}") + "\n"
	case "transforms":
		body := strings.TrimSuffix(strings.TrimPrefix(nested, "{"), "}")
		if f.path[0] != "name" {
			body += ", name: r"
		}
		if f.path[0] != "to" {
			body += ", to: [o]"
		}
		return base + "transforms:\n  - {" + body + "}\n"
	}
	block := "{type: " + f.typ + ", " + strings.TrimSuffix(strings.TrimPrefix(nested, "{"), "}") + "}"
	return base + f.section + ":\n  t: " + block + "\n"
}

// walkSchema calls leaf for every field under an object schema.
func walkSchema(obj map[string]any, path []string, leaf func([]string, string)) {
	props, _ := obj["properties"].(map[string]any)
	for _, key := range sortedKeys(props) {
		if key == "type" {
			continue
		}
		p := props[key].(map[string]any)
		here := append(slices.Clone(path), key)
		switch {
		case p["properties"] != nil:
			walkSchema(p, here, leaf)
		case p["anyOf"] != nil || p["items"] != nil || p["type"] == "array":
			leaf(here, "list")
		case p["additionalProperties"] != nil && p["type"] == "object":
			leaf(here, "map")
		default:
			leaf(here, "scalar")
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
