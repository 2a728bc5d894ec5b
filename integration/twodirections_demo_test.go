package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTwoDirectionsDemo checks deploy/compose/two-directions as a user
// would run it: the services and their wiring, both Ferry configs validate
// with exactly the environment compose gives them, ferry B signs with
// the secret the receiver verifies with and posts where it listens, and the
// receiver is a script node accepts that uses the official Standard
// Webhooks library. TestTwoDirections runs the same configs end to end.
func TestTwoDirectionsDemo(t *testing.T) {
	docs := yamlDocs(t, filepath.Join(demoDir, "compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents", len(docs))
	}
	c := docs[0]
	db, kafka := dig(c, "services", "mariadb"), dig(c, "services", "kafka")
	a, b, recv := dig(c, "services", "ferry-a"), dig(c, "services", "ferry-b"), dig(c, "services", "legacy-receiver")
	if db == nil || kafka == nil || a == nil || b == nil || recv == nil {
		t.Fatal("compose.yaml needs services mariadb, kafka, ferry-a, ferry-b and legacy-receiver")
	}
	var dbArgs []string
	for _, arg := range list(db, "command") {
		dbArgs = append(dbArgs, arg.(string))
	}
	for _, want := range []string{"--server-id=", "--log-bin", "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL"} {
		if !slices.ContainsFunc(dbArgs, func(a string) bool { return strings.HasPrefix(a, want) }) {
			t.Errorf("mariadb command lacks %s: %q", want, dbArgs)
		}
	}
	if !strings.Contains(str(kafka, "image"), "apache/kafka") || !strings.Contains(str(kafka, "environment", "KAFKA_ADVERTISED_LISTENERS"), "//kafka:9092") {
		t.Error("kafka: want apache/kafka advertising kafka:9092")
	}

	for name, svc := range map[string]any{"ferry-a": a, "ferry-b": b} {
		if df := filepath.Join(demoDir, str(svc, "build", "context"), str(svc, "build", "dockerfile")); filepath.Clean(df) != filepath.Clean("../deploy/Dockerfile") {
			t.Errorf("%s builds %s, want deploy/Dockerfile", name, df)
		}
		for dep := range dig(svc, "depends_on").(map[string]any) {
			if str(svc, "depends_on", dep, "condition") != "service_healthy" {
				t.Errorf("%s depends_on %s without condition: service_healthy", name, dep)
			}
			if dig(c, "services", dep, "healthcheck", "test") == nil {
				t.Errorf("%s waits for %s, which has no healthcheck", name, dep)
			}
		}
		config := demoMount(t, c, name, svc)
		env := map[string]string{}
		for k, v := range dig(svc, "environment").(map[string]any) {
			env[k] = composeDefault(v.(string))
		}
		body, err := os.ReadFile(config)
		if err != nil {
			t.Fatal(err)
		}
		required, _ := requiredEnv(string(body))
		for _, k := range required {
			if _, ok := env[k]; !ok {
				t.Errorf("%s needs ${%s}, which the %s service's environment does not set", config, k, name)
			}
		}
		if env["KAFKA_BROKERS"] != "kafka:9092" {
			t.Errorf("%s: KAFKA_BROKERS %q is not what kafka advertises", name, env["KAFKA_BROKERS"])
		}
		ferryValidate(t, env, config)
	}

	// Ferry B signs with the receiver's secret and posts where it listens.
	secret := composeDefault(str(b, "environment", "WEBHOOK_SECRET"))
	if !strings.HasPrefix(secret, "whsec_") || secret != composeDefault(str(recv, "environment", "WEBHOOK_SECRET")) {
		t.Errorf("ferry-b signs with %q, the receiver verifies with %q: want one whsec_ secret", secret, composeDefault(str(recv, "environment", "WEBHOOK_SECRET")))
	}
	if url := str(b, "environment", "LEGACY_URL"); !strings.HasPrefix(url, "http://legacy-receiver:"+str(recv, "environment", "PORT")+"/") {
		t.Errorf("ferry-b posts to %s, the receiver listens on legacy-receiver:%s", url, str(recv, "environment", "PORT"))
	}
	bConfig, _ := os.ReadFile(filepath.Join(demoDir, "ferry-b.yaml"))
	if !strings.Contains(string(bConfig), "group_instance_id:") || !strings.Contains(string(bConfig), "scheme: standard-webhooks") {
		t.Error("ferry-b.yaml must consume as a static member and sign with standard-webhooks")
	}

	// The receiver: valid JavaScript verifying with the official library.
	js := filepath.Join(demoDir, "receiver", "receiver.js")
	pkg, _ := os.ReadFile(filepath.Join(demoDir, "receiver", "package.json"))
	src, _ := os.ReadFile(js)
	if !strings.Contains(string(pkg), `"standardwebhooks"`) || !strings.Contains(string(src), `require("standardwebhooks")`) || !strings.Contains(string(src), ".verify(") {
		t.Error("the receiver must verify with the standardwebhooks npm library")
	}
	if node, err := exec.LookPath("node"); err == nil {
		if out, err := exec.Command(node, "--check", js).CombinedOutput(); err != nil {
			t.Errorf("node --check receiver.js: %v\n%s", err, out)
		}
	}
}

// demoMount returns the config file svc mounts at /etc/ferry/ferry.yaml,
// checking its state directory is a declared named volume.
func demoMount(t *testing.T, compose any, name string, svc any) string {
	t.Helper()
	var config string
	for _, v := range list(svc, "volumes") {
		src, target, _ := strings.Cut(v.(string), ":")
		switch strings.TrimSuffix(target, ":ro") {
		case "/etc/ferry/ferry.yaml":
			config = filepath.Join(demoDir, src)
		case "/var/lib/ferry":
			if !slices.Contains(keys(dig(compose, "volumes")), src) {
				t.Errorf("%s: state volume %s is not declared under volumes:", name, src)
			}
		}
	}
	if config == "" {
		t.Fatalf("%s mounts no /etc/ferry/ferry.yaml", name)
	}
	return config
}
