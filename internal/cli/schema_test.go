package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestConfigSchemaCommand: `ferry config schema` prints the checked-in
// schema (the generator's own test keeps that file current).
func TestConfigSchemaCommand(t *testing.T) {
	want, err := os.ReadFile("../../configs/ferry.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"config", "schema"}, Env{Stdout: &out, Stderr: &errb}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("`ferry config schema` differs from configs/ferry.schema.json: run `go generate ./internal/config`")
	}
	for _, args := range [][]string{{"config"}, {"config", "scheme"}, {"config", "schema", "extra"}} {
		out.Reset()
		errb.Reset()
		code := Main(context.Background(), args, Env{Stdout: &out, Stderr: &errb})
		if code != ExitUsage || out.Len() != 0 || !strings.Contains(errb.String(), "want `ferry config schema`") {
			t.Errorf("ferry %v = %d, stdout %q, stderr %q; want a usage error", args, code, out.String(), errb.String())
		}
	}
}
