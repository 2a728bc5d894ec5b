package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources: {}\nsinks: {o: {type: stdout, x: 1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"version"}, ExitOK, "ferry test", ""},
		{[]string{"validate", "-c", "../../configs/quickstart.yaml"}, ExitOK, "ok (1 source(s)", ""},
		{[]string{"validate", "-c", bad}, ExitUsage, "", bad + ":2:27: sinks.o.x: unknown key: this block takes no keys"},
		{[]string{"validate", "-c", "/nonexistent.yaml"}, ExitUsage, "", "/nonexistent.yaml: cannot read"},
		{[]string{"validate"}, ExitUsage, "", "missing -c CONFIG"},
		{[]string{"run", "-c", "x.yaml", "extra"}, ExitUsage, "", `unexpected arguments ["extra"]`},
		{[]string{"run", "--bogus"}, ExitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"checkpoint", "show", "-c", "../../configs/quickstart.yaml"}, ExitUsage, "", "needs --source NAME"},
		{[]string{"checkpoint", "set", "--source", "shop-db", "-c", "../../configs/quickstart.yaml"}, ExitUsage, "", "needs one POSITION"},
		{[]string{"frobnicate"}, ExitUsage, "", `unknown command "frobnicate"`},
		{[]string{"transform", "test", "-c", "../../configs/outbox.yaml"}, ExitUsage, "", "needs --input FILE"},
		{[]string{"transform", "test", "-c", "../../configs/outbox.yaml", "--input", "../../configs/samples/outbox.json", "--rule", "nope"}, ExitUsage, "", `no rule named "nope"`},
		{[]string{"transform", "test", "-c", "../../configs/outbox.yaml", "--input", "../../configs/samples/outbox.json",
			"--expect", "../../configs/samples/outbox.expected.json"}, ExitOK, "ok: 2 result(s) match", ""},
		{[]string{"transform", "test", "-c", "../../configs/outbox.yaml", "--input", "../../configs/samples/outbox.json",
			"--expect", "../../configs/samples/route-by-table.expected.json"}, ExitFailure, "", "first difference at line"},
		{[]string{"transform", "test", "-c", "../../configs/outbox.yaml", "--input", "../../configs/outbox.yaml"}, ExitUsage, "", "outbox.yaml: sample 0"},
		{nil, ExitUsage, "", "missing command"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := Main(context.Background(), c.args, Env{Stdout: &out, Stderr: &errb, Version: "test"})
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("ferry %v = %d\nstdout: %s\nstderr: %s\nwant %d, %q, %q", c.args, code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
	}
}

// TestValidateWarnsExposedAdmin: an admin listener reachable from other
// hosts without a token is valid, with a warning naming the fix.
func TestValidateWarnsExposedAdmin(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("t0ken-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for body, warned := range map[string]bool{
		"admin: {listen: '0.0.0.0:9090'}":                         true,
		"admin: {listen: '10.0.0.1:9090'}":                        true,
		"admin: {listen: '127.0.0.1:9090'}":                       false,
		"admin: {listen: '0.0.0.0:9090', token: '${file:token}'}": false,
		"admin: {listen: '[::1]:9090'}":                           false,
		"admin: {listen: 'off'}":                                  false,
	} {
		file := filepath.Join(dir, "ferry.yaml")
		cfg := body + "\nsources: {w: {type: webhook, listen: '127.0.0.1:0', path: /x}}\nsinks: {o: {type: stdout}}\ndefaults: {to: [o]}\n"
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := Main(context.Background(), []string{"validate", "-c", file}, Env{Stdout: &out, Stderr: &errb, Version: "test"})
		if code != ExitOK {
			t.Fatalf("%s: exit %d: %s", body, code, errb.String())
		}
		if got := strings.Contains(errb.String(), "warning:") && strings.Contains(errb.String(), "set admin.token"); got != warned {
			t.Errorf("%s: warned %v, want %v (stderr %q)", body, got, warned, errb.String())
		}
		if strings.Contains(errb.String(), "t0ken-from-file") {
			t.Errorf("%s: the token is printed: %q", body, errb.String())
		}
	}
}
