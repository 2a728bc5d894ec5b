package config_test

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/config"
)

// `go generate ./internal/config` runs the doc extraction below with
// -update, then rewrites configs/ferry.schema.json with the new docs
// compiled in.
var update = flag.Bool("update", false, "rewrite schema_docs.go and configs/ferry.schema.json")

const (
	module     = "github.com/ferry-cdc/ferry"
	repoRoot   = "../.."
	schemaFile = repoRoot + "/configs/ferry.schema.json"
	regenerate = "run `go generate ./internal/config` (or `go run ./cmd/ferry config schema > configs/ferry.schema.json`)"
)

// TestSchemaFileUpToDate is the CI check that the checked-in schema is
// what the binary generates from the current types.
func TestSchemaFileUpToDate(t *testing.T) {
	got, err := config.Schema(app.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	checkGenerated(t, schemaFile, got, "the config types")
}

// checkGenerated is the CI check that the checked-in file at path is got,
// what the code generates from source; with -update it writes got there.
func checkGenerated(t *testing.T, path string, got []byte, source string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the checked-in %s: %v; %s", path, err, regenerate)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what %s generate (%s)", path, source, regenerate)
	}
}

// The README's connector key tables sit between these markers.
const (
	tablesBegin = "<!-- connector keys: generated from the connectors' declarations by `go generate ./internal/config`; do not edit -->\n"
	tablesEnd   = "<!-- end of connector keys -->\n"
)

// TestReadmeKeyTablesUpToDate is the CI check that the README's tables of
// connector keys are what the declarations generate.
func TestReadmeKeyTablesUpToDate(t *testing.T) {
	tables, err := config.KeyTables(app.Registry{})
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(repoRoot, "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(b), tablesBegin)
	current, after, ok2 := strings.Cut(rest, tablesEnd)
	if !ok || !ok2 {
		t.Fatalf("README.md lacks the markers of the connector key tables:\n%s%s", tablesBegin, tablesEnd)
	}
	if *update {
		if err := os.WriteFile(readme, []byte(before+tablesBegin+"\n"+tables+"\n"+tablesEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if current != "\n"+tables+"\n" {
		t.Fatalf("README.md's connector key tables are stale: %s", regenerate)
	}
}

// TestSchemaDocsUpToDate checks the descriptions compiled into the schema
// are the current doc comments of the configuration types.
func TestSchemaDocsUpToDate(t *testing.T) {
	docs, err := extractDocs(configTypes(t))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("schema_docs.go", renderDocs(t, docs), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !reflect.DeepEqual(docs, config.SchemaDocs) {
		for k, v := range docs {
			if config.SchemaDocs[k] != v {
				t.Errorf("doc of %s changed: %q", k, v)
			}
		}
		for k := range config.SchemaDocs {
			if _, ok := docs[k]; !ok {
				t.Errorf("doc of %s is gone", k)
			}
		}
		t.Fatalf("internal/config/schema_docs.go is stale: %s", regenerate)
	}
}

// configTypes are the struct types a configuration decodes into: the
// top-level ones and every registered connector's, with what they nest.
func configTypes(t *testing.T) []reflect.Type {
	roots := []reflect.Type{reflect.TypeFor[config.Config](), reflect.TypeFor[config.Transform](), reflect.TypeFor[config.RetryPolicy]()}
	reg := app.Registry{}
	for _, typ := range reg.SourceTypes() {
		c, _ := reg.NewSourceConfig(typ)
		roots = append(roots, reflect.TypeOf(c))
	}
	for _, typ := range reg.SinkTypes() {
		c, _ := reg.NewSinkConfig(typ)
		roots = append(roots, reflect.TypeOf(c))
	}
	seen := map[reflect.Type]bool{}
	var out []reflect.Type
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		out = append(out, rt)
		for i := range rt.NumField() {
			if f := rt.Field(i); f.Tag.Get("yaml") != "" {
				walk(f.Type)
			}
		}
	}
	for _, r := range roots {
		walk(r)
	}
	for _, rt := range out {
		if !strings.HasPrefix(rt.PkgPath(), module) {
			t.Fatalf("configuration type %s is outside the module: its docs cannot be read", rt)
		}
	}
	return out
}

// extractDocs reads each type's doc comment and its fields' (the comment
// above a field, or else the one after it) from the Go source.
func extractDocs(types []reflect.Type) (map[string]string, error) {
	docs := map[string]string{}
	parsed := map[string][]*ast.File{}
	for _, rt := range types {
		dir := filepath.Join(repoRoot, strings.TrimPrefix(rt.PkgPath(), module))
		files, ok := parsed[dir]
		if !ok {
			var err error
			if files, err = parseDir(dir); err != nil {
				return nil, err
			}
			parsed[dir] = files
		}
		spec, doc := findType(files, rt.Name())
		if spec == nil {
			return nil, fmt.Errorf("type %s not found in %s", rt, dir)
		}
		prefix := rt.PkgPath() + "." + rt.Name()
		if doc != "" {
			docs[prefix] = doc
		}
		for _, f := range spec.Fields.List {
			text := f.Doc.Text()
			if text == "" {
				text = f.Comment.Text()
			}
			for _, name := range f.Names {
				if text = strings.TrimSpace(text); text != "" {
					docs[prefix+"."+name.Name] = text
				}
			}
		}
	}
	return docs, nil
}

func parseDir(dir string) ([]*ast.File, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", p, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// findType returns the struct declaration of name and its doc comment.
func findType(files []*ast.File, name string) (*ast.StructType, string) {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				ts := s.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok || ts.Name.Name != name {
					continue
				}
				doc := ts.Doc.Text()
				if doc == "" && len(gd.Specs) == 1 {
					doc = gd.Doc.Text()
				}
				return st, strings.TrimSpace(doc)
			}
		}
	}
	return nil, ""
}

func renderDocs(t *testing.T, docs map[string]string) []byte {
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("// Code generated by `go generate ./internal/config`; DO NOT EDIT.\n\npackage config\n\n")
	b.WriteString("// schemaDocs are the Go doc comments of the configuration types, by\n")
	b.WriteString("// \"package.Type\" and \"package.Type.Field\", for the schema's descriptions.\n")
	b.WriteString("var schemaDocs = map[string]string{\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "\t%s: %s,\n", strconv.Quote(k), strconv.Quote(docs[k]))
	}
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return out
}
