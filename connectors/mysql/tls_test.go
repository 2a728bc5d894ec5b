package mysql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSConfigValidate(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  TLSConfig
		want string // "" valid
	}{
		{TLSConfig{}, ""},
		{TLSConfig{Mode: "disabled"}, ""},
		{TLSConfig{Mode: "required"}, ""},
		{TLSConfig{Mode: "verify-full", CAFile: ca, ServerName: "db"}, ""},
		{TLSConfig{Mode: "verify-ca"}, ""},
		{TLSConfig{Mode: "preferred"}, `tls.mode: must be disabled, required, verify-ca or verify-full, not "preferred"`},
		{TLSConfig{CAFile: ca}, "tls.mode: is disabled but other tls keys are set"},
		{TLSConfig{Mode: "required", CAFile: ca}, "tls.ca_file: is not checked in mode required"},
		{TLSConfig{Mode: "verify-full", CAFile: ca + ".missing"}, "tls.ca_file: cannot read"},
		{TLSConfig{Mode: "verify-full", CertFile: ca}, "cert_file and key_file must be set together"},
	} {
		var msgs []string
		for _, err := range tc.cfg.validate() {
			msgs = append(msgs, err.Error())
		}
		got := strings.Join(msgs, "; ")
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestTLSBuildModes(t *testing.T) {
	for mode, skip := range map[string]bool{"required": true, "verify-ca": true, "verify-full": false} {
		c, err := (&TLSConfig{Mode: mode}).build("db.internal:3306")
		if err != nil || c == nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if c.InsecureSkipVerify != skip || c.ServerName != "db.internal" {
			t.Errorf("%s: InsecureSkipVerify %v ServerName %q", mode, c.InsecureSkipVerify, c.ServerName)
		}
		if mode == "verify-ca" && c.VerifyConnection == nil {
			t.Error("verify-ca must verify the chain itself")
		}
	}
	if c, err := (&TLSConfig{}).build("db:3306"); c != nil || err != nil {
		t.Fatalf("disabled: %v %v", c, err)
	}
}
