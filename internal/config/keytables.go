package config

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// KeyTables renders the README's tables of connector keys: one per
// source and sink type, a row per key (nested blocks flattened as
// "tls.ca_file"), read from the schema, so its types, defaults, allowed
// values and descriptions are the ones the loader and editors use.
func KeyTables(reg Registry) (string, error) {
	_, b, err := schema(reg)
	if err != nil {
		return "", err
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		return "", fmt.Errorf("read back the schema: %w", err)
	}
	var out strings.Builder
	for _, section := range []struct{ key, kind string }{{"sources", "source"}, {"sinks", "sink"}} {
		props, _ := root["properties"].(map[string]any)
		block, _ := props[section.key].(map[string]any)
		addl, _ := block["additionalProperties"].(map[string]any)
		branches, _ := addl["allOf"].([]any)
		for _, br := range branches {
			then, _ := br.(map[string]any)["then"].(map[string]any)
			typeProp, _ := then["properties"].(map[string]any)["type"].(map[string]any)
			typ, _ := typeProp["const"].(string)
			fmt.Fprintf(&out, "#### `type: %s` %s\n\n", typ, section.kind)
			var rows strings.Builder
			keyRows(&rows, then, "", true)
			if rows.Len() == 0 {
				out.WriteString("No keys.\n\n")
				continue
			}
			out.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
			out.WriteString(rows.String())
			out.WriteString("\n")
		}
	}
	out.WriteString("Every sink also takes `retry` (`initial_backoff`, `max_backoff`, `max_attempts`, `max_retry_after`), shown above.\n")
	return out.String(), nil
}

// keyRows writes the rows of an object schema's keys, prefixed.
func keyRows(out *strings.Builder, obj map[string]any, prefix string, block bool) {
	props, _ := obj["properties"].(map[string]any)
	required := map[string]bool{}
	for _, r := range asList(obj["required"]) {
		required[r.(string)] = true
	}
	var oneOf []string
	for _, alt := range asList(obj["oneOf"]) {
		for _, k := range asList(alt.(map[string]any)["required"]) {
			oneOf = append(oneOf, "`"+prefix+k.(string)+"`")
		}
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		if block && (k == "type" || k == "retry") {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := props[k].(map[string]any)
		if p["additionalProperties"] == false {
			keyRows(out, p, prefix+k+".", false)
			continue
		}
		var notes []string
		if d, _ := p["description"].(string); d != "" {
			if rest, ok := strings.CutPrefix(d, k); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, ",")) {
				d = "`" + k + "`" + rest // the schema names the key in plain text
			}
			notes = append(notes, strings.TrimSuffix(d, ".")+".")
		}
		if vals := enumOf(p); len(vals) > 0 {
			notes = append(notes, "One of: "+strings.Join(vals, ", ")+".")
		}
		if required[k] {
			notes = append(notes, "**Required.**")
		}
		if len(oneOf) > 0 && slices.Contains(oneOf, "`"+prefix+k+"`") {
			notes = append(notes, "Exactly one of "+strings.Join(oneOf, ", ")+".")
		}
		if ex := asList(p["examples"]); len(ex) > 0 {
			notes = append(notes, fmt.Sprintf("E.g. `%v`.", ex[0]))
		}
		def := ""
		if d, ok := p["default"]; ok {
			b, _ := json.Marshal(d)
			def = "`" + strings.Trim(string(b), `"`) + "`"
		}
		fmt.Fprintf(out, "| `%s%s` | %s | %s | %s |\n", prefix, k, typeName(p), def, cell(strings.Join(notes, " ")))
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// enumOf returns the enum of a string key or of a list's items.
func enumOf(p map[string]any) []string {
	var out []string
	for _, alt := range asList(p["anyOf"]) {
		a := alt.(map[string]any)
		for _, e := range asList(a["enum"]) {
			out = append(out, "`"+e.(string)+"`")
		}
		if items, ok := a["items"].(map[string]any); ok && len(out) == 0 {
			out = enumOf(items)
		}
	}
	return out
}

// typeName names a key's schema the way the README does.
func typeName(p map[string]any) string {
	if p["writeOnly"] == true {
		return "secret"
	}
	if r, ok := p["$ref"].(string); ok {
		switch name := strings.TrimPrefix(r, "#/$defs/"); name {
		case "int32", "integer":
			return "integer"
		case "uint32", "uinteger":
			return "whole number"
		default:
			return name
		}
	}
	if p["type"] == "object" {
		if v, ok := p["additionalProperties"].(map[string]any); ok {
			return "map of " + typeName(v)
		}
		return "mapping"
	}
	if p["type"] == "array" {
		if items, ok := p["items"].(map[string]any); ok {
			return "list of " + typeName(items)
		}
	}
	for _, alt := range asList(p["anyOf"]) {
		a := alt.(map[string]any)
		if a["type"] == "array" {
			return typeName(a)
		}
		if _, ok := a["enum"]; ok {
			return "string"
		}
	}
	return "value"
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
