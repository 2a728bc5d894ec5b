package ferry_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// codeSpan is a backquoted span of Markdown.
var codeSpan = regexp.MustCompile("`([^`\n]+)`")

// qualified is a Go identifier qualified by its package name, as the doc
// writes them (`ferry.Sink`, `retry.New(policy)`).
var qualified = regexp.MustCompile(`^([a-z]+)\.([A-Z][A-Za-z0-9]*)\b`)

// pathLike is what a repository path may be made of; spans with spaces or
// placeholders (`connectors/<type>/`) are prose.
var pathLike = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_./-]*$`)

// fileExts are the extensions that make a span without a slash a file
// name (`sink.go`) rather than a key (`pipeline.max_in_flight`).
var fileExts = map[string]bool{".go": true, ".md": true, ".json": true, ".yaml": true, ".sh": true, ".mod": true}

// docPackages are the packages whose identifiers the doc may name, by
// package name.
var docPackages = map[string]string{
	"ferry":     ".",
	"transform": "transform",
	"retry":     "internal/retry",
	"conntest":  "connectors/conntest",
}

// staleReferences returns what doc names that is not in the repository at
// root: each backquoted path (a span with a slash or a file extension)
// that does not exist, and each qualified
// identifier of docPackages that its package does not declare. It also
// reports how many references it checked.
func staleReferences(t *testing.T, root, doc string) (stale []string, checked int) {
	t.Helper()
	decls := map[string]map[string]bool{}
	for _, m := range codeSpan.FindAllStringSubmatch(doc, -1) {
		span := m[1]
		if q := qualified.FindStringSubmatch(span); q != nil {
			dir, ok := docPackages[q[1]]
			if !ok {
				continue // a configuration key such as pipeline.max_in_flight
			}
			if decls[dir] == nil {
				decls[dir] = declared(t, filepath.Join(root, dir))
			}
			checked++
			if !decls[dir][q[2]] {
				stale = append(stale, span+" (not declared in "+dir+")")
			}
			continue
		}
		if !pathLike.MatchString(span) || !(strings.Contains(span, "/") || fileExts[filepath.Ext(span)]) {
			continue
		}
		checked++
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(span))); err != nil {
			stale = append(stale, span)
		}
	}
	return stale, checked
}

// declared returns the top-level names the non-test Go files of dir
// declare.
func declared(t *testing.T, dir string) map[string]bool {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	names := map[string]bool{}
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						names[d.Name.Name] = true
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							names[s.Name.Name] = true
						case *ast.ValueSpec:
							for _, n := range s.Names {
								names[n.Name] = true
							}
						}
					}
				}
			}
		}
	}
	return names
}

// TestArchitectureDocMatchesCode fails when ARCHITECTURE.md names a
// package, file or identifier that no longer exists.
func TestArchitectureDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	stale, checked := staleReferences(t, ".", string(doc))
	for _, s := range stale {
		t.Errorf("ARCHITECTURE.md names %s, which is gone: update the doc with the code", s)
	}
	if checked < 20 {
		t.Fatalf("only %d references checked: the parser of the doc is broken", checked)
	}
}

// TestStaleReferencesFindsWhatIsGone: the check itself reports a missing
// folder, file and identifier, and passes what exists or is not a path.
func TestStaleReferencesFindsWhatIsGone(t *testing.T) {
	doc := "See `internal/pipeline/`, `sink.go`, `ferry.Sink` and `retry.New(p)`; " +
		"not `connectors/carrierpigeon/`, `internal/pipeline/gone.go`, `ferry.NoSuchThing` nor `transform.Gone`. " +
		"Ignored: `pipeline.max_in_flight`, `go generate ./internal/config`, `connectors/<type>/`, `yaml`."
	stale, checked := staleReferences(t, ".", doc)
	want := []string{"connectors/carrierpigeon/", "internal/pipeline/gone.go", "ferry.NoSuchThing (not declared in .)",
		"transform.Gone (not declared in transform)"}
	if strings.Join(stale, "|") != strings.Join(want, "|") || checked != 8 {
		t.Fatalf("stale = %q (%d checked), want %q (8 checked)", stale, checked, want)
	}
}
