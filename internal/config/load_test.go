package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

type dbConfig struct {
	Addr     string       `yaml:"addr"`
	Password ferry.Secret `yaml:"password"`
	ServerID uint32       `yaml:"server_id"`
	Include  []string     `yaml:"include"`
	Start    string       `yaml:"start"`
	Verify   struct {
		Scheme string       `yaml:"scheme"`
		Secret ferry.Secret `yaml:"secret"`
	} `yaml:"verify"`
}

func (c *dbConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, ferry.Invalid("addr", "is required"))
	}
	if c.Verify.Scheme == "bogus" {
		errs = append(errs, ferry.Invalid("verify.scheme", "unknown scheme %q", c.Verify.Scheme))
	}
	return errors.Join(errs...)
}

type webConfig struct {
	URL     string                  `yaml:"url"`
	Timeout time.Duration           `yaml:"timeout"`
	Headers map[string]ferry.Secret `yaml:"headers"`
}

func (c *webConfig) Validate() error {
	if !strings.HasPrefix(c.URL, "http") {
		return ferry.Invalid("url", "must be an http(s) URL")
	}
	return nil
}

type testRegistry struct{}

func (testRegistry) NewSourceConfig(typ string) (any, bool) {
	if typ == "db" {
		return &dbConfig{Start: "latest"}, true
	}
	return nil, false
}

func (testRegistry) NewSinkConfig(typ string) (any, bool) {
	switch typ {
	case "web":
		return &webConfig{Timeout: 10 * time.Second}, true
	case "console":
		return &struct{}{}, true
	}
	return nil, false
}

func (testRegistry) SourceTypes() []string { return []string{"db"} }
func (testRegistry) SinkTypes() []string   { return []string{"console", "web"} }

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

const minimal = `
sources:
  db1: {type: db, addr: "127.0.0.1:3306"}
sinks:
  out: {type: console}
`

func TestLoadValidAndDefaults(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load([]string{write(t, dir, "a.yaml", minimal)}, testRegistry{}, WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Dir != "./.ferry" || cfg.State.CheckpointInterval != time.Second || cfg.Admin.Listen != "127.0.0.1:9090" ||
		cfg.Defaults.TypePrefix != "ferry" || cfg.Pipeline.MaxInFlight != 10000 || cfg.Log.Level != "info" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	src := cfg.Sources["db1"]
	if src.Type != "db" || src.Spec.(*dbConfig).Addr != "127.0.0.1:3306" || src.Spec.(*dbConfig).Start != "latest" {
		t.Fatalf("source = %+v %+v", src, src.Spec)
	}
	if cfg.Sinks["out"].Retry.MaxBackoff != 30*time.Second {
		t.Fatalf("retry defaults: %+v", cfg.Sinks["out"].Retry)
	}
	if p := cfg.Position("sources.db1"); p.Line != 3 || p.File == "" {
		t.Fatalf("Position = %v", p)
	}
}

func TestErrorsAllInOnePass(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "bad.yaml", `state:
  dir: ./x
  checkpoint_interval: 5
admin:
  listen: nope
sources:
  db1:
    type: db
    adr: x
    server_id: -1
  "bad name":
    type: db
    addr: y
  db3:
    addr: z
  db4:
    type: oracle
transforms:
  - name: r1
    to: [bsu]
    from: [db9]
  - name: r1
    drop: true
sinks:
  out: {type: console}
  web1:
    type: web
    url: ftp://x
    timeout: 10
    retry: {max_attempts: -2}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load = %v, want Errors", err)
	}
	want := []string{
		f + `:3:24: state.checkpoint_interval: invalid duration "5": add a unit, like 5s or 250ms`,
		f + `:5:3: admin.listen: must be host:port (or off): address nope: missing port in address`,
		f + `:7:3: sources.db1.addr: is required`,
		f + `:9:5: sources.db1.adr: unknown key (did you mean "addr"?) (known: addr, include, password, server_id, start, verify)`,
		f + `:10:16: sources.db1.server_id: invalid integer "-1": want a whole number from 0 to 4294967295`,
		f + `:11:3: sources.bad name: invalid name: use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)`,
		f + `:14:3: sources.db3: missing type (a source needs ` + "`type:`)",
		f + `:17:11: sources.db4.type: unknown source type "oracle" (known: db)`,
		f + `:20:10: transforms[0].to[0]: unknown sink "bsu" (known: out, web1)`,
		f + `:21:12: transforms[0].from[0]: unknown source "db9" (known: bad name, db1)`,
		f + `:22:5: transforms[1].name: duplicate rule name "r1" (also transforms[0])`,
		f + `:28:5: sinks.web1.url: must be an http(s) URL`,
		f + `:29:14: sinks.web1.timeout: invalid duration "10": add a unit, like 5s or 250ms`,
		f + `:30:5: sinks.web1.retry: needs initial_backoff > 0, max_backoff >= initial_backoff, max_attempts >= 0 and max_retry_after >= 0`,
	}
	got := strings.Split(es.Error(), "\n")
	for _, w := range want {
		if !contains(got, w) {
			t.Errorf("missing error:\n  %s\ngot:\n  %s", w, strings.Join(got, "\n  "))
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d errors, want %d:\n  %s", len(got), len(want), strings.Join(got, "\n  "))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestValidatorErrorsArePositioned(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "v.yaml", `sources:
  db1:
    type: db
    verify:
      scheme: bogus
sinks:
  w: {type: web, url: "ftp://nope"}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	want := []string{
		f + ":2:3: sources.db1.addr: is required",
		f + ":5:7: sources.db1.verify.scheme: unknown scheme \"bogus\"",
		f + ":7:18: sinks.w.url: must be an http(s) URL",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Load error =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
}

func TestMergeOverlayAndTransforms(t *testing.T) {
	dir := t.TempDir()
	base := write(t, dir, "base.yaml", `state: {dir: /var/lib/ferry}
sources:
  db1: {type: db, addr: "base:3306", include: [a.b]}
transforms:
  - {name: one, to: [out]}
sinks:
  out: {type: console}
`)
	prod := write(t, dir, "prod.yaml", `sources:
  db1:
    addr: "prod:3306"
transforms:
  - {name: two, drop: true}
sinks:
  web1: {type: web, url: "http://x", timeout: notaduration}
`)
	_, err := Load([]string{base, prod}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil || !strings.HasPrefix(err.Error(), prod+":7:47: sinks.web1.timeout") {
		t.Fatalf("error should point into prod.yaml: %v", err)
	}
	prod = write(t, dir, "prod.yaml", `sources:
  db1:
    addr: "prod:3306"
transforms:
  - {name: two, drop: true}
`)
	cfg, err := Load([]string{base, prod}, testRegistry{}, WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Sources["db1"].Spec.(*dbConfig)
	if db.Addr != "prod:3306" || len(db.Include) != 1 || cfg.State.Dir != "/var/lib/ferry" {
		t.Fatalf("overlay wrong: %+v state=%+v", db, cfg.State)
	}
	if len(cfg.Transforms) != 2 || cfg.Transforms[0].Name != "one" || cfg.Transforms[1].Name != "two" {
		t.Fatalf("transforms not concatenated: %+v", cfg.Transforms)
	}
	if p := cfg.Position("sources.db1.addr"); p.File != prod || p.Line != 3 {
		t.Fatalf("addr position = %v, want prod.yaml:3", p)
	}
}

func TestExpansion(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "secret.txt", "from-file\n")
	f := write(t, dir, "e.yaml", `sources:
  db1:
    type: db
    addr: ${HOST}:${PORT:-3306}
    password: ${file:secret.txt}
    start: $${literal}
sinks:
  out: {type: console}
`)
	env := map[string]string{"HOST": "db.internal"}
	cfg, err := Load([]string{f}, testRegistry{}, WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Sources["db1"].Spec.(*dbConfig)
	if db.Addr != "db.internal:3306" || db.Password.Reveal() != "from-file" || db.Start != "${literal}" {
		t.Fatalf("expanded = %+v (password %q)", db, db.Password.Reveal())
	}
}

func TestExpansionErrorsNeverShowValues(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "s.yaml", `sources:
  db1:
    type: db
    addr: x
    server_id: ${SECRET_VAL}
    start: ${MISSING}
    include: ["${file:nope.txt}", "${bad"]
sinks:
  out: {type: console}
`)
	secret := "hunter2-top-secret"
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(func(k string) (string, bool) {
		if k == "SECRET_VAL" {
			return secret, true
		}
		return "", false
	}))
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Fatalf("error leaks the secret: %s", msg)
	}
	for _, want := range []string{
		f + `:5:16: sources.db1.server_id: invalid integer "${SECRET_VAL}"`,
		f + `:6:12: environment variable MISSING is not set`,
		f + `:7:15: read ${file:nope.txt}: no such file or directory`,
		f + `:7:35: unterminated ${ in "${bad"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "a.yaml", `x-db: &db {type: db, addr: "h:1", include: [a.b]}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), `x-db: unknown key`) {
		t.Fatalf("unknown top-level key not reported: %v", err)
	}
	f = write(t, dir, "b.yaml", `sources:
  db1: &db {type: db, addr: "h:1", include: [a.b]}
  db2:
    <<: *db
    addr: "h:2"
  db3: *db
sinks:
  out: {type: console}
`)
	cfg, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Sources["db2"].Spec.(*dbConfig); a.Addr != "h:2" || len(a.Include) != 1 {
		t.Fatalf("merge key: %+v", a)
	}
	if cfg.Sources["db3"].Type != "db" {
		t.Fatalf("alias block: %+v", cfg.Sources["db3"])
	}
}

func TestSyntaxAndFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", "sources:\n  db1: {type: db\n")
	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load([]string{bad, missing}, testRegistry{}, WithLookupEnv(noEnv))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %v", err)
	}
	if len(es) != 2 || es[0].Error() != bad+":1:1: did not find expected ',' or '}'" || es[1].Error() != missing+": cannot read: no such file or directory" {
		t.Fatalf("errors = %v", es)
	}
}

func TestDuplicateKeysAndScalarList(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "d.yaml", `defaults:
  to: out
sources:
  db1:
    type: db
    addr: a
    addr: b
sinks:
  out: {type: console}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil || err.Error() != f+":7:5: sources.db1.addr: duplicate key (first set on line 6)" {
		t.Fatalf("Load = %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(minimal)
	f.Add("sources: {a: {type: db, <<: {addr: x}}}\nsinks: {o: {type: web, url: ${X:-y}}}")
	f.Add("transforms: [{name: a, to: [o], event: {extensions: {a: b}}}]")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "f.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load([]string{p}, testRegistry{}, WithLookupEnv(noEnv))
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}

func TestRecursiveAliasesDoNotHang(t *testing.T) {
	dir := t.TempDir()
	for i, body := range []string{
		"sources:\n  a: &x\n    type: db\n    <<: *x\nsinks: {o: {type: console}}\n",
		"transforms: &t [*t]\nsources: {a: {type: db, addr: x}}\nsinks: {o: {type: console}}\n",
		"state: &s {dir: *s}\n",
	} {
		f := write(t, dir, "r.yaml", body)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("case %d: Load did not return", i)
		}
	}
}

func TestDeadLetterSinkMustExist(t *testing.T) {
	f := write(t, t.TempDir(), "dls.yaml", `pipeline:
  dead_letter_sink: dql
sources:
  db1: {type: db, addr: x}
sinks:
  out: {type: console}
  dlq: {type: console}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	want := f + `:2:3: pipeline.dead_letter_sink: unknown sink "dql" (known: dlq, out)`
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %v\nwant %s", err, want)
	}
}

// TestPprofNeedsToken: pprof without a token would either serve profiles to
// anyone or silently not at all; the configuration refuses it instead.
func TestPprofNeedsToken(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "pprof.yaml", `admin: {pprof: true}
sources:
  db1: {type: db, addr: x}
sinks:
  out: {type: console}
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), "admin.pprof: needs admin.token") {
		t.Fatalf("Load = %v, want admin.pprof needs admin.token", err)
	}
	f = write(t, dir, "pprof-token.yaml", `admin: {pprof: true, token: s3cret}
sources:
  db1: {type: db, addr: x}
sinks:
  out: {type: console}
`)
	cfg, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Admin.Pprof {
		t.Fatal("admin.pprof: true did not load as true")
	}
}

func TestSinkLingerBounds(t *testing.T) {
	dir := t.TempDir()
	for linger, ok := range map[string]bool{"0s": true, "5ms": true, "1s": true, "2s": false, "-1ms": false} {
		f := write(t, dir, "linger.yaml", `pipeline: {sink_linger: `+linger+`}
sources:
  db1: {type: db, addr: x}
sinks:
  out: {type: console}
`)
		_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
		if ok && err != nil {
			t.Errorf("sink_linger %s: %v", linger, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "pipeline.sink_linger: must be between 0 (off) and 1s")) {
			t.Errorf("sink_linger %s: Load = %v, want the bound named", linger, err)
		}
	}
}
