package integration

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The checks here cover what can be checked without a container engine or a
// cluster: the image's build recipe, the manifests' structure and
// cross-references, and that every config they ship is one `ferry validate`
// accepts. deploy_k8s_test.go checks the Kubernetes manifests,
// deploy_metrics_test.go the Grafana dashboard against a running ferry.

// TestStaticBuild builds ferry the way deploy/Dockerfile does and checks the
// result needs no dynamic loader (it must run in a distroless image).
func TestStaticBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ferry")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", bin, "../cmd/ferry")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: it is dynamically linked")
		}
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "ferry test" {
		t.Fatalf("ferry version = %q, %v", out, err)
	}
	// The Dockerfile's own go build command must be the one just tested.
	build := buildStage(t, parseDockerfileFile(t))
	run := findRun(build, "go build")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/ferry"} {
		if !strings.Contains(run, want) {
			t.Errorf("deploy/Dockerfile's go build lacks %s: %s", want, run)
		}
	}
}

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	cmd  string // upper case: FROM, RUN, COPY...
	args string
	line int
}

type dockerStage struct {
	image, name string
	instrs      []dockerInstr
}

// parseDockerfile splits a Dockerfile into stages. Comment lines are dropped
// even inside a continuation, as Docker does.
func parseDockerfile(text string) ([]dockerStage, error) {
	var stages []dockerStage
	var cur *dockerInstr
	var pending []dockerInstr
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: n}
		} else {
			cur.args += " " + line
		}
		if !cont {
			pending = append(pending, *cur)
			cur = nil
		}
	}
	for _, in := range pending {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := dockerStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
		}
	}
	return stages, sc.Err()
}

func parseDockerfileFile(t *testing.T) []dockerStage {
	t.Helper()
	b, err := os.ReadFile("../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(b))
	if err != nil || len(stages) < 2 {
		t.Fatalf("deploy/Dockerfile: want a multi-stage build, got %d stages (%v)", len(stages), err)
	}
	return stages
}

// buildStage is the stage the final image copies /usr/local/bin/ferry from.
func buildStage(t *testing.T, stages []dockerStage) dockerStage {
	t.Helper()
	for _, c := range instrs(stages[len(stages)-1], "COPY") {
		if from := copyFlag(c.args, "from"); from != "" && strings.HasSuffix(c.args, " /usr/local/bin/ferry") {
			for _, s := range stages {
				if s.name == from {
					return s
				}
			}
			t.Fatalf("deploy/Dockerfile:%d: COPY --from=%s names no stage", c.line, from)
		}
	}
	t.Fatal("deploy/Dockerfile: the final stage copies no /usr/local/bin/ferry from a build stage")
	return dockerStage{}
}

func instrs(s dockerStage, cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func findRun(s dockerStage, substr string) string {
	for _, in := range instrs(s, "RUN") {
		if strings.Contains(in.args, substr) {
			return in.args
		}
	}
	return ""
}

// copyFlag returns the value of --name=VALUE in COPY arguments.
func copyFlag(args, name string) string {
	for _, f := range strings.Fields(args) {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// execForm decodes a JSON-array instruction argument (["a","b"]).
func execForm(t *testing.T, in dockerInstr) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("deploy/Dockerfile:%d: %s must be in exec form (a JSON array; the image has no shell): %v", in.line, in.cmd, err)
	}
	return v
}

func lastInstr(t *testing.T, s dockerStage, cmd string) dockerInstr {
	t.Helper()
	all := instrs(s, cmd)
	if len(all) == 0 {
		t.Fatalf("deploy/Dockerfile: the final stage has no %s", cmd)
	}
	return all[len(all)-1]
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfileFile(t)
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") || !strings.HasSuffix(final.image, ":nonroot") {
		t.Errorf("final image %s, want gcr.io/distroless/static...:nonroot", final.image)
	}
	if u := lastInstr(t, final, "USER").args; !slices.Contains([]string{"65532", "65532:65532", "nonroot", "nonroot:nonroot"}, u) {
		t.Errorf("USER %s, want the distroless nonroot user 65532", u)
	}
	if got := execForm(t, lastInstr(t, final, "ENTRYPOINT")); !slices.Equal(got, []string{"/usr/local/bin/ferry"}) {
		t.Errorf("ENTRYPOINT %q", got)
	}
	if got := execForm(t, lastInstr(t, final, "CMD")); !slices.Equal(got, []string{"run", "-c", "/etc/ferry/ferry.yaml"}) {
		t.Errorf("CMD %q", got)
	}
	hc := lastInstr(t, final, "HEALTHCHECK")
	_, cmdJSON, ok := strings.Cut(hc.args, "CMD ")
	if !ok {
		t.Fatalf("deploy/Dockerfile:%d: HEALTHCHECK without CMD", hc.line)
	}
	if got := execForm(t, dockerInstr{cmd: "HEALTHCHECK", args: cmdJSON, line: hc.line}); !slices.Equal(got, []string{"/usr/local/bin/ferry", "health", "-c", "/etc/ferry/ferry.yaml"}) {
		t.Errorf("HEALTHCHECK CMD %q, want ferry health -c /etc/ferry/ferry.yaml", got)
	}
	if v := lastInstr(t, final, "VOLUME").args; !strings.Contains(v, `"/var/lib/ferry"`) && strings.TrimSpace(v) != "/var/lib/ferry" {
		t.Errorf("VOLUME %s, want /var/lib/ferry", v)
	}
	if !slices.Contains(strings.Fields(lastInstr(t, final, "EXPOSE").args), "9090") {
		t.Error("EXPOSE lacks the admin port 9090")
	}
	labels := strings.Join(func() (s []string) {
		for _, in := range instrs(final, "LABEL") {
			s = append(s, in.args)
		}
		return
	}(), " ")
	for _, k := range []string{"title", "description", "source", "version"} {
		if !strings.Contains(labels, "org.opencontainers.image."+k+"=") {
			t.Errorf("no LABEL org.opencontainers.image.%s", k)
		}
	}
	// /var/lib/ferry must exist in the image owned by nonroot: a volume
	// mounted over it (compose, docker run -v) takes its owner from there.
	build := buildStage(t, stages)
	owned := false
	for _, c := range instrs(final, "COPY") {
		f := strings.Fields(c.args)
		if f[len(f)-1] == "/var/lib/ferry" {
			owned = slices.Contains([]string{"65532:65532", "nonroot:nonroot"}, copyFlag(c.args, "chown"))
			src := f[len(f)-2]
			if !strings.Contains(findRun(build, "mkdir"), src) {
				t.Errorf("deploy/Dockerfile:%d: %s is not made by a mkdir in the build stage", c.line, src)
			}
		}
	}
	if !owned {
		t.Error("the final stage does not COPY --chown=65532:65532 a directory to /var/lib/ferry")
	}
}

// TestDockerignore checks the build context keeps everything
// `go build ./cmd/ferry` reads.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}", "../cmd/ferry").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		rel, err := filepath.Rel(root, f[0])
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // the standard library or the module cache
		}
		for _, name := range f[1:] {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, name)))
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files of the module: %v", len(needed), needed)
	}
	for _, f := range needed {
		if dockerignored(patterns, f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
}

// dockerignored applies .dockerignore patterns (path.Match syntax, ** for
// any number of directories, ! to re-include) to a slash path, including
// its parent directories.
func dockerignored(patterns []string, file string) bool {
	parts := strings.Split(file, "/")
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.Trim(strings.TrimPrefix(p, "!"), "/")
		for i := 1; i <= len(parts); i++ {
			if globMatch(strings.Split(p, "/"), parts[:i]) {
				ignored = !neg
				break
			}
		}
	}
	return ignored
}

func globMatch(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if globMatch(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], parts[0])
	return ok && globMatch(pat[1:], parts[1:])
}

// TestDeployYAMLParses parses every YAML file under deploy/, every document.
func TestDeployYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir("../deploy", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return err
		}
		for i, doc := range yamlDocs(t, p) {
			n++
			if _, ok := doc.(map[string]any); !ok {
				t.Errorf("%s: document %d is %T, want a mapping", p, i+1, doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("only %d YAML documents under deploy/", n)
	}
}

// yamlDocs decodes every document of a YAML file, failing on a syntax error.
func yamlDocs(t *testing.T, file string) []any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []any
	dec := yaml.NewDecoder(f)
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: %v", file, err)
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

// dig walks nested maps (string keys) and lists (int indexes).
func dig(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := dig(v, keys...).(string)
	return s
}

func list(v any, keys ...any) []any {
	l, _ := dig(v, keys...).([]any)
	return l
}

var envRef = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// requiredEnv returns the ${VAR} names a ferry config needs set (those
// without a :-default), and all it names.
func requiredEnv(config string) (required, all []string) {
	for _, m := range envRef.FindAllStringSubmatch(config, -1) {
		if strings.HasPrefix(m[0], "$$") {
			continue // $${ is a literal
		}
		if !slices.Contains(all, m[1]) {
			all = append(all, m[1])
		}
		if m[2] == "" && !slices.Contains(required, m[1]) {
			required = append(required, m[1])
		}
	}
	return required, all
}

// ferryValidate runs `ferry validate` on files with exactly env for the
// variables the configs name (whatever this process has is removed), so a
// variable the deployment forgets to provide fails here.
func ferryValidate(t *testing.T, env map[string]string, files ...string) {
	t.Helper()
	var named []string
	args := []string{"validate"}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, all := requiredEnv(string(b))
		named = append(named, all...)
		args = append(args, "-c", f)
	}
	cmdEnv := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(named, k)
	})
	for k, v := range env {
		if slices.Contains(named, k) {
			cmdEnv = append(cmdEnv, k+"="+v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferryBin, args...)
	cmd.Env = cmdEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ferry %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestComposeDemo checks deploy/compose: the services, their wiring, and
// that Ferry's mounted config validates with the environment compose gives.
func TestComposeDemo(t *testing.T) {
	const dir = "../deploy/compose"
	docs := yamlDocs(t, filepath.Join(dir, "compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents", len(docs))
	}
	c := docs[0]
	db := dig(c, "services", "mariadb")
	if db == nil {
		db = dig(c, "services", "mysql")
	}
	kafka, ferry := dig(c, "services", "kafka"), dig(c, "services", "ferry")
	if db == nil || kafka == nil || ferry == nil {
		t.Fatalf("compose.yaml needs services mariadb (or mysql), kafka and ferry")
	}

	// Binlog row capture as Ferry requires it.
	var dbArgs []string
	for _, a := range list(db, "command") {
		dbArgs = append(dbArgs, a.(string))
	}
	for _, want := range []string{"--server-id=", "--log-bin", "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL"} {
		if !slices.ContainsFunc(dbArgs, func(a string) bool { return strings.HasPrefix(a, want) }) {
			t.Errorf("database command lacks %s: %q", want, dbArgs)
		}
	}
	if !strings.Contains(str(kafka, "image"), "apache/kafka") || !strings.Contains(str(kafka, "environment", "KAFKA_PROCESS_ROLES"), "controller") {
		t.Error("kafka: want apache/kafka in KRaft mode (KAFKA_PROCESS_ROLES with controller)")
	}

	// Ferry is built from deploy/Dockerfile.
	ctxDir := filepath.Join(dir, str(ferry, "build", "context"))
	if df := filepath.Join(ctxDir, str(ferry, "build", "dockerfile")); filepath.Clean(df) != filepath.Clean("../deploy/Dockerfile") {
		t.Errorf("ferry builds %s, want deploy/Dockerfile", df)
	}
	for name, svc := range map[string]any{"database": db, "kafka": kafka} {
		if dig(svc, "healthcheck", "test") == nil {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	for svc := range dig(ferry, "depends_on").(map[string]any) {
		if str(ferry, "depends_on", svc, "condition") != "service_healthy" {
			t.Errorf("ferry depends_on %s without condition: service_healthy", svc)
		}
	}

	// Mounts: the config file exists; state is a declared named volume.
	var config string
	for _, v := range list(ferry, "volumes") {
		src, target, _ := strings.Cut(v.(string), ":")
		target = strings.TrimSuffix(target, ":ro")
		switch target {
		case "/etc/ferry/ferry.yaml":
			config = filepath.Join(dir, src)
		case "/var/lib/ferry":
			if !slices.Contains(keys(dig(c, "volumes")), src) {
				t.Errorf("state volume %s is not declared under volumes:", src)
			}
		}
	}
	if config == "" {
		t.Fatal("ferry mounts no /etc/ferry/ferry.yaml")
	}
	body, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range dig(ferry, "environment").(map[string]any) {
		env[k] = composeDefault(v.(string))
	}
	required, _ := requiredEnv(string(body))
	for _, k := range required {
		if _, ok := env[k]; !ok {
			t.Errorf("%s needs ${%s}, which the ferry service's environment does not set", config, k)
		}
	}
	if str(yamlDocs(t, config)[0], "state", "dir") != "${FERRY_STATE_DIR:-/var/lib/ferry}" && str(yamlDocs(t, config)[0], "state", "dir") != "/var/lib/ferry" {
		t.Errorf("%s: state.dir must be /var/lib/ferry, the volume", config)
	}
	ferryValidate(t, env, config)

	// The initdb scripts create a least-privilege user with the password
	// Ferry is given.
	init := readAll(t, filepath.Join(dir, "initdb"))
	for _, want := range []string{"REPLICATION SLAVE", "REPLICATION CLIENT", "GRANT SELECT ON shop.*", "FERRY_MYSQL_PASSWORD"} {
		if !strings.Contains(init, want) {
			t.Errorf("initdb lacks %s", want)
		}
	}
	if strings.Contains(init, "ALL PRIVILEGES") {
		t.Error("initdb grants ALL PRIVILEGES")
	}
	if str(ferry, "environment", "MYSQL_PASSWORD") != str(db, "environment", "FERRY_MYSQL_PASSWORD") {
		t.Error("ferry's MYSQL_PASSWORD differs from the password initdb gives the ferry user")
	}
	if env["KAFKA_BROKERS"] != "kafka:9092" || !strings.Contains(str(kafka, "environment", "KAFKA_ADVERTISED_LISTENERS"), "//kafka:9092") {
		t.Errorf("ferry's KAFKA_BROKERS %q is not what kafka advertises", env["KAFKA_BROKERS"])
	}
}

// composeDefault resolves compose's ${VAR:-default} to its default.
func composeDefault(v string) string {
	return envRef.ReplaceAllStringFunc(v, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		return strings.TrimPrefix(sub[2], ":-")
	})
}

func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func readAll(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}
