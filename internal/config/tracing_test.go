package config

import (
	"strings"
	"testing"
)

func TestTracingDefaultsAndURL(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load([]string{write(t, dir, "a.yaml", minimal+`tracing: {otlp_endpoint: "http://collector:4318", headers: {x-api-key: k}}
`)}, testRegistry{}, WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	tr := cfg.Tracing
	if !tr.Enabled() || tr.SampleRatio != 1 || tr.ServiceName != "ferry" || tr.TracesURL() != "http://collector:4318/v1/traces" ||
		tr.Headers["x-api-key"].Reveal() != "k" {
		t.Fatalf("tracing = %+v, url %s", tr, tr.TracesURL())
	}
	if got := (Tracing{OTLPEndpoint: "https://otlp.example.com/custom/traces"}).TracesURL(); got != "https://otlp.example.com/custom/traces" {
		t.Fatalf("a path is kept: %s", got)
	}
	if (Tracing{}).Enabled() {
		t.Fatal("tracing on without an endpoint")
	}
}

// Bad tracing settings are reported at their line, and no message repeats
// a header value or the endpoint's credentials.
func TestTracingErrors(t *testing.T) {
	dir := t.TempDir()
	f := write(t, dir, "bad.yaml", minimal+`tracing:
  otlp_endpoint: "grpc://user:pa55word@collector:4317"
  headers: {"bad name": s3cret-value, X-Ok: "line\nbreak-s3cret"}
  sample_ratio: 1.5
  service_name: ""
`)
	_, err := Load([]string{f}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil {
		t.Fatal("bad tracing block accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		"bad.yaml:7:3: tracing.otlp_endpoint: must be an http:// or https:// URL",
		"bad.yaml:8:13: tracing.headers.bad name: is not a header name",
		"bad.yaml:8:39: tracing.headers.X-Ok: value must not contain line breaks",
		"bad.yaml:9:3: tracing.sample_ratio: must be between 0 and 1",
		"bad.yaml:10:3: tracing.service_name: must not be empty",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"s3cret", "pa55word"} {
		if strings.Contains(msg, secret) {
			t.Fatalf("%s printed:\n%s", secret, msg)
		}
	}
	_, err = Load([]string{write(t, dir, "creds.yaml", minimal+`tracing: {otlp_endpoint: "https://u:pa55word@collector"}
`)}, testRegistry{}, WithLookupEnv(noEnv))
	if err == nil || !strings.Contains(err.Error(), "must not hold credentials") || strings.Contains(err.Error(), "pa55word") {
		t.Fatalf("credentials in the endpoint: %v", err)
	}
}
