package httpsink

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// The modes of the `mode` key.
const (
	ModeBinary     = "binary"
	ModeStructured = "structured"
	ModeBatch      = "batch"
)

// Bounds of the numeric keys.
const (
	maxConcurrency = 256
	minBatchBytes  = 1024
)

// Config is the `type: http` sink block. Start from DefaultConfig.
type Config struct {
	// URL is the absolute http:// or https:// endpoint. Required.
	URL string `yaml:"url" ferry:"required,example=https://audit.internal/events"`
	// Mode is binary (ce-* headers), structured (one
	// application/cloudevents+json event) or batch
	// (application/cloudevents-batch+json).
	Mode string `yaml:"mode" ferry:"default=binary,enum=binary|structured|batch"`
	// Method is POST or PUT.
	Method string `yaml:"method" ferry:"default=POST,enum=POST|PUT,fold"`
	// Headers are added to every request. Their values are secrets.
	Headers map[string]ferry.Secret `yaml:"headers"`
	// Timeout bounds each request, from sending it to reading the answer.
	Timeout time.Duration `yaml:"timeout" ferry:"default=10s"`
	// Concurrency is how many requests one Write runs in parallel (1-256);
	// with AdaptiveConcurrency, the most it may run.
	Concurrency int `yaml:"concurrency" ferry:"default=8"`
	// AdaptiveConcurrency adapts the requests run in parallel to what the
	// endpoint takes, from 1 to Concurrency: one more after a Write that
	// used them all without push-back, a tenth fewer after 429 or 503
	// answers, timeouts or a clear rise of the response time; a limit
	// that was pushed back is tried again only after clean Writes, twice
	// as many each time it is pushed back again (at most 32).
	AdaptiveConcurrency bool `yaml:"adaptive_concurrency"`
	// BatchMaxEvents and BatchMaxBytes bound one request in batch mode.
	BatchMaxEvents int `yaml:"batch_max_events" ferry:"default=100"`
	BatchMaxBytes  int `yaml:"batch_max_bytes" ferry:"default=1048576"`
	// TLS configures https beyond the system's trusted roots; cert_file
	// and key_file give the client certificate of mutual TLS.
	TLS TLSConfig `yaml:"tls"`
	// Sign signs every request, last, over the body actually sent.
	Sign SignConfig `yaml:"sign"`
	// OAuth2 authorizes every request with a client credentials token.
	OAuth2 OAuth2Config `yaml:"oauth2"`
	// TransientStatuses and PermanentStatuses override the classification
	// of answers (300-599): a transient answer is retried, a permanent one
	// dead-letters the request's events.
	TransientStatuses []int `yaml:"transient_statuses"`
	PermanentStatuses []int `yaml:"permanent_statuses"`
	// Request shapes each event's request with CEL expressions: URL,
	// headers and body, for endpoints that expect their own payload.
	Request RequestConfig `yaml:"request"`
	// RateLimit bounds the requests per second to each endpoint.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
}

// TLSConfig is the `tls` key.
type TLSConfig = tlsconfig.Config

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: http` sink.
var Connector = ferry.SinkSpec[Config]{Name: "http",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		return ferry.AsSink(New(name, cfg, env.Log))
	}}

// Validate reports every invalid key, each as a *ferry.FieldError, joined.
// It reads the TLS files to check they are readable but does not parse them
// (New does).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, ferry.Invalid(field, format, args...)) }
	https := false
	if u, err := url.Parse(c.URL); c.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		bad("url", "must be an absolute http:// or https:// URL")
	} else {
		https = c.URL != "" && u.Scheme == "https"
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, like 10s")
	}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		bad("concurrency", "must be from 1 to %d, not %d", maxConcurrency, c.Concurrency)
	}
	if c.BatchMaxEvents < 1 {
		bad("batch_max_events", "must be at least 1, not %d", c.BatchMaxEvents)
	}
	if c.BatchMaxBytes < minBatchBytes {
		bad("batch_max_bytes", "must be at least %d, not %d", minBatchBytes, c.BatchMaxBytes)
	}
	errs = append(errs, validateStatuses(c.TransientStatuses, c.PermanentStatuses)...)
	errs = append(errs, validateHeaders(c.Headers)...)
	errs = append(errs, validateTLS(&c.TLS, https || c.URL == "" || c.Request.URL != "")...)
	errs = append(errs, c.Request.validate(c.Mode, c.Headers)...)
	errs = append(errs, c.RateLimit.validate()...)
	errs = append(errs, c.validateAuth()...)
	return errors.Join(errs...)
}

// validateStatuses checks the classification overrides: answers from 300
// to 599, each in at most one list.
func validateStatuses(transient, permanent []int) []error {
	var errs []error
	in := map[int]string{}
	for _, l := range []struct {
		field string
		codes []int
	}{{"transient_statuses", transient}, {"permanent_statuses", permanent}} {
		for i, code := range l.codes {
			field := fmt.Sprintf("%s[%d]", l.field, i)
			switch {
			case code < 300 || code > 599:
				errs = append(errs, ferry.Invalid(field, "must be an HTTP status from 300 to 599, not %d", code))
			case in[code] != "" && in[code] != l.field:
				errs = append(errs, ferry.Invalid(field, "%d is also in %s", code, in[code]))
			}
			in[code] = l.field
		}
	}
	return errs
}

// reservedHeaders are managed by the sink: the protocol binding sets the
// content headers and ce-* attributes, net/http the connection headers.
var reservedHeaders = map[string]bool{"Content-Type": true, "Content-Length": true,
	"Transfer-Encoding": true, "Host": true, "Connection": true}

// validateHeaders checks names and values; errors never include a value.
func validateHeaders(h map[string]ferry.Secret) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(h)) {
		value := h[name]
		field := "headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !isToken(name):
			errs = append(errs, ferry.Invalid(field, "is not a valid header name"))
		case reservedHeaders[canon] || strings.HasPrefix(canon, "Ce-"):
			errs = append(errs, ferry.Invalid(field, "is managed by the sink (CloudEvents HTTP binding, connection handling) and cannot be configured"))
		case strings.ContainsAny(value.Reveal(), "\r\n\x00"):
			errs = append(errs, ferry.Invalid(field, "value must not contain line breaks or NUL"))
		}
	}
	return errs
}

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r >= 0x80 || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}\x7f", r) {
			return false
		}
	}
	return true
}

func validateTLS(t *TLSConfig, httpsOrUnknown bool) []error {
	var errs []error
	if !t.IsZero() && !httpsOrUnknown {
		errs = append(errs, ferry.Invalid("tls", "is set but url is not https://"))
	}
	return append(errs, t.Validate("tls")...)
}
