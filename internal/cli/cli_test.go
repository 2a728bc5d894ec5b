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
