// Package webhook is the source that receives HTTP requests from legacy
// systems. A request is answered 2xx only once its event is durable in the
// state store (or, with ack: delivered, delivered to every sink); it is then
// drained through the pipeline like any other change and removed when every
// sink has it. Signatures are verified, retries deduplicated by delivery id,
// bodies parsed into structured data, CloudEvents passed through unchanged.
package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: webhook` source block.
type Config struct {
	Listen       string        `yaml:"listen"`  // host:port; sources may share one with different paths
	Path         string        `yaml:"path"`    // e.g. /hooks/crm
	Methods      []string      `yaml:"methods"` // default [POST]
	MaxBodyBytes int64         `yaml:"max_body_bytes"`
	Accept       []string      `yaml:"accept"` // json, form, xml, text, cloudevents
	Form         string        `yaml:"form"`   // structured | raw
	XML          string        `yaml:"xml"`    // structured | raw
	Verify       Verify        `yaml:"verify"`
	IDHeader     string        `yaml:"id_header"`     // delivery id header, e.g. X-Delivery-Id
	IDExpression string        `yaml:"id_expression"` // or a CEL expression over the request
	DedupeWindow time.Duration `yaml:"dedupe_window"`
	Ack          string        `yaml:"ack"`         // durable | delivered
	AckTimeout   time.Duration `yaml:"ack_timeout"` // ack: delivered waits at most this long
	Buffer       Buffer        `yaml:"buffer"`
	RateLimit    RateLimit     `yaml:"rate_limit"`
	// Limits bound the listener's connections, headers and request time.
	Limits Limits `yaml:"limits"`
	// Extensions copies request headers into CloudEvent extensions:
	// extension name -> header name. traceparent/tracestate always are.
	Extensions map[string]string `yaml:"extensions"`
}

// Buffer bounds the durable journal.
type Buffer struct {
	MaxEntries int           `yaml:"max_entries"` // beyond it: 503
	RetryAfter time.Duration `yaml:"retry_after"` // told to callers on 503
}

// RateLimit bounds accepted requests per second (beyond it: 429).
type RateLimit struct {
	RequestsPerSecond float64 `yaml:"requests_per_second"` // 0: unlimited
	Burst             int     `yaml:"burst"`
}

// Verify selects how requests prove where they come from.
type Verify struct {
	// Scheme: none, hmac (or hmac-sha1|hmac-sha256|hmac-sha512), github,
	// stripe, standard-webhooks, shopify, basic, bearer, api-key.
	Scheme          string         `yaml:"scheme"`
	Secret          ferry.Secret   `yaml:"secret"`
	Secrets         []ferry.Secret `yaml:"secrets"` // more secrets accepted during a rotation
	Header          string         `yaml:"header"`  // hmac: the signature header; api-key: the key's
	Algorithm       string         `yaml:"algorithm"`
	Encoding        string         `yaml:"encoding"` // hmac: hex | base64
	Prefix          string         `yaml:"prefix"`   // hmac: e.g. "sha256="
	TimestampHeader string         `yaml:"timestamp_header"`
	Tolerance       time.Duration  `yaml:"tolerance"`
	Username        string         `yaml:"username"` // basic
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config {
	return &Config{
		Listen: "0.0.0.0:8080", Methods: []string{http.MethodPost}, MaxBodyBytes: 1 << 20,
		Accept: []string{"json", "form", "xml", "text", "cloudevents"}, Form: "structured", XML: "structured",
		Verify:       Verify{Scheme: "none", Encoding: "hex", Tolerance: 5 * time.Minute},
		DedupeWindow: 24 * time.Hour, Ack: "durable", AckTimeout: 30 * time.Second,
		Buffer: Buffer{MaxEntries: 100000, RetryAfter: 5 * time.Second},
		Limits: defaultLimits(),
	}
}

var acceptKinds = map[string]bool{"json": true, "form": true, "xml": true, "text": true, "cloudevents": true}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, ferry.Invalid("listen", "must be host:port: %v", err))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, ferry.Invalid("path", "is required and must start with /, like /hooks/crm"))
	}
	for i, m := range c.Methods {
		if m != strings.ToUpper(m) || m == "" || strings.ContainsAny(m, " /") {
			errs = append(errs, ferry.Invalid(fmt.Sprintf("methods[%d]", i), "%q is not an HTTP method (write it in capitals)", m))
		}
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, ferry.Invalid("max_body_bytes", "must be positive"))
	}
	for i, a := range c.Accept {
		if !acceptKinds[a] {
			errs = append(errs, ferry.Invalid(fmt.Sprintf("accept[%d]", i), "must be json, form, xml, text or cloudevents, not %q", a))
		}
	}
	for field, v := range map[string]string{"form": c.Form, "xml": c.XML} {
		if v != "structured" && v != "raw" {
			errs = append(errs, ferry.Invalid(field, "must be structured or raw, not %q", v))
		}
	}
	if c.IDHeader != "" && c.IDExpression != "" {
		errs = append(errs, ferry.Invalid("id_expression", "set id_header or id_expression, not both"))
	}
	if c.Ack != "durable" && c.Ack != "delivered" {
		errs = append(errs, ferry.Invalid("ack", "must be durable or delivered, not %q", c.Ack))
	}
	if c.DedupeWindow <= 0 || c.AckTimeout <= 0 {
		errs = append(errs, ferry.Invalid("dedupe_window", "dedupe_window and ack_timeout must be positive"))
	}
	if c.Buffer.MaxEntries < 1 || c.Buffer.RetryAfter < time.Second {
		errs = append(errs, ferry.Invalid("buffer", "max_entries must be positive and retry_after at least 1s"))
	}
	if c.RateLimit.RequestsPerSecond < 0 || c.RateLimit.Burst < 0 {
		errs = append(errs, ferry.Invalid("rate_limit", "requests_per_second and burst must not be negative"))
	}
	errs = append(errs, c.Limits.validate()...)
	for ext, header := range c.Extensions {
		if !validExtension(ext) {
			errs = append(errs, ferry.Invalid("extensions."+ext, "extension names are lower-case letters and digits, at most 20"))
		}
		if h := c.secretHeader(header); h != "" {
			errs = append(errs, ferry.Invalid("extensions."+ext, "must not copy %s: credential and signature headers never leave Ferry", h))
		}
	}
	if h := c.secretHeader(c.IDHeader); h != "" && c.IDHeader != "" {
		errs = append(errs, ferry.Invalid("id_header", "must not be %s: credential and signature headers never leave Ferry", h))
	}
	if _, err := newVerifier(c.Verify); err != nil {
		var fe *ferry.FieldError
		if errors.As(err, &fe) {
			fe.Field = "verify." + fe.Field
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validExtension(name string) bool {
	if name == "" || len(name) > 20 {
		return false
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
