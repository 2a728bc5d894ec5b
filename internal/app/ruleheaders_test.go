package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRulesMayNotReadSecretHeaders: a rule over a webhook source that
// reads a credential header or the scheme's signature header is refused
// at validation, naming the header; other headers are fine.
func TestRulesMayNotReadSecretHeaders(t *testing.T) {
	base := `sources:
  hooks: {type: webhook, listen: '127.0.0.1:0', path: /x, verify: {scheme: github, secret: s3cret-gh}}
sinks: {o: {type: stdout}}
transforms:
  - name: r
    from: [hooks]
    to: [o]
`
	for expr, refused := range map[string]string{
		`when: 'headers["authorization"] != ""'`:                         "Authorization",
		`when: 'headers.cookie == "x"'`:                                  "Cookie",
		`when: '"proxy-authorization" in headers'`:                       "Proxy-Authorization",
		`event: {data: 'headers["x-hub-signature-256"]'}`:                "X-Hub-Signature-256",
		`event: {extensions: {sig: 'headers[''X-Hub-Signature-256'']'}}`: "X-Hub-Signature-256",
		`when: 'headers["x-delivery"] != ""'`:                            "",
		`when: 'body.authorization == "x"'`:                              "",
	} {
		file := filepath.Join(t.TempDir(), "ferry.yaml")
		if err := os.WriteFile(file, []byte(base+"    "+expr+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load([]string{file})
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		_, err = BuildEngine(cfg)
		switch {
		case refused == "" && err != nil:
			t.Errorf("%s: refused: %v", expr, err)
		case refused != "" && (err == nil || !strings.Contains(err.Error(), "reads the "+refused+" header")):
			t.Errorf("%s: %v, want a refusal naming %s", expr, err, refused)
		}
	}
}
