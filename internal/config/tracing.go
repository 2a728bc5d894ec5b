package config

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/ferry-cdc/ferry"
)

// Tracing is the `tracing:` block: OpenTelemetry span export over
// OTLP/HTTP (protobuf). Without OTLPEndpoint nothing is exported and trace
// context is passed through unchanged.
type Tracing struct {
	// OTLPEndpoint is the collector's URL, http or https. A URL without a
	// path gets the OTLP default /v1/traces; one with a path is used as is.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Headers go with every export request (API keys): secrets.
	Headers map[string]ferry.Secret `yaml:"headers"`
	// SampleRatio is the share of the traces Ferry starts (requests that
	// came without a traceparent) that are recorded; requests with one
	// follow the caller's sampled flag.
	SampleRatio float64 `yaml:"sample_ratio"`
	ServiceName string  `yaml:"service_name"`
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.OTLPEndpoint != "" }

// TracesURL is the full URL spans are posted to.
func (t Tracing) TracesURL() string {
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil {
		return t.OTLPEndpoint // validated at load
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

func defaultTracing() Tracing {
	return Tracing{SampleRatio: 1, ServiceName: "ferry"}
}

// checkTracing validates `tracing:`. No message repeats a header value.
func checkTracing(t *Tracing, add func(path, format string, args ...any)) {
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		add("tracing.sample_ratio", "must be between 0 and 1")
	}
	if strings.TrimSpace(t.ServiceName) == "" {
		add("tracing.service_name", "must not be empty")
	}
	names := make([]string, 0, len(t.Headers))
	for name := range t.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch v := t.Headers[name].Reveal(); {
		case name == "" || strings.ContainsAny(name, " \t\r\n:()<>@,;\\\"/[]?={}") || http.CanonicalHeaderKey(name) == "Content-Type":
			add("tracing.headers."+name, "is not a header name the exporter may set")
		case strings.ContainsAny(v, "\r\n\x00"):
			add("tracing.headers."+name, "value must not contain line breaks or NUL")
		}
	}
	if t.OTLPEndpoint == "" {
		if len(t.Headers) > 0 {
			add("tracing", "headers are set but otlp_endpoint is not: nothing would be exported")
		}
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	switch {
	case err != nil:
		add("tracing.otlp_endpoint", "is not a URL (like http://collector:4318)")
	case u.Scheme != "http" && u.Scheme != "https":
		add("tracing.otlp_endpoint", "must be an http:// or https:// URL (OTLP/HTTP; gRPC is not supported), not %q", u.Scheme)
	case u.Host == "":
		add("tracing.otlp_endpoint", "needs a host, like http://collector:4318")
	case u.User != nil:
		add("tracing.otlp_endpoint", "must not hold credentials: put them in tracing.headers")
	case u.RawQuery != "" || u.Fragment != "":
		add("tracing.otlp_endpoint", "must not have a query or fragment")
	}
}
