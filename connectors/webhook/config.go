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
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: webhook` source block.
type Config struct {
	// Listen is the host:port served; sources may share one with
	// different paths.
	Listen string `yaml:"listen" ferry:"default=0.0.0.0:8080"`
	// Path is the request path of this source, e.g. /hooks/crm.
	Path string `yaml:"path" ferry:"required,example=/hooks/crm"`
	// Methods are the HTTP methods accepted, in capitals.
	Methods []string `yaml:"methods" ferry:"default=POST"`
	// MaxBodyBytes bounds a request body (beyond it: 413).
	MaxBodyBytes int64 `yaml:"max_body_bytes" ferry:"default=1048576"`
	// Accept lists the body kinds accepted: json, form, xml, text,
	// cloudevents.
	Accept []string `yaml:"accept" ferry:"default=json|form|xml|text|cloudevents,enum=json|form|xml|text|cloudevents"`
	// Form is how form bodies become data: structured or raw.
	Form string `yaml:"form" ferry:"default=structured,enum=structured|raw"`
	// XML is how XML bodies become data: structured or raw.
	XML    string `yaml:"xml" ferry:"default=structured,enum=structured|raw"`
	Verify Verify `yaml:"verify"`
	// IDHeader is the delivery id header, e.g. X-Delivery-Id.
	IDHeader string `yaml:"id_header"`
	// IDExpression computes the delivery id instead, with CEL over the
	// request.
	IDExpression string `yaml:"id_expression"`
	// DedupeWindow is how long a delivery id is remembered: a retry
	// within it gets the first answer and stores nothing.
	DedupeWindow time.Duration `yaml:"dedupe_window" ferry:"default=24h"`
	// Ack is durable (answer once the request is stored) or delivered
	// (once every sink has its event).
	Ack string `yaml:"ack" ferry:"default=durable,enum=durable|delivered"`
	// AckTimeout is how long ack: delivered waits at most.
	AckTimeout time.Duration `yaml:"ack_timeout" ferry:"default=30s"`
	Buffer     Buffer        `yaml:"buffer"`
	RateLimit  RateLimit     `yaml:"rate_limit"`
	// Limits bound the listener's connections, headers and request time.
	Limits Limits `yaml:"limits"`
	// Extensions copies request headers into CloudEvent extensions:
	// extension name -> header name. traceparent/tracestate always are.
	Extensions map[string]string `yaml:"extensions"`
}

// Buffer bounds the durable journal.
type Buffer struct {
	MaxEntries int           `yaml:"max_entries" ferry:"default=100000"` // beyond it: 503
	RetryAfter time.Duration `yaml:"retry_after" ferry:"default=5s"`     // told to callers on 503
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
	Scheme          string         `yaml:"scheme" ferry:"default=none,enum=none|hmac|hmac-sha1|hmac-sha256|hmac-sha512|github|stripe|standard-webhooks|shopify|basic|bearer|api-key"`
	Secret          ferry.Secret   `yaml:"secret"`
	Secrets         []ferry.Secret `yaml:"secrets"` // more secrets accepted during a rotation
	Header          string         `yaml:"header"`  // hmac: the signature header; api-key: the key's
	Algorithm       string         `yaml:"algorithm" ferry:"enum=sha1|sha256|sha512"`
	Encoding        string         `yaml:"encoding" ferry:"default=hex,enum=hex|base64"` // hmac: hex | base64
	Prefix          string         `yaml:"prefix"`                                       // hmac: e.g. "sha256="
	TimestampHeader string         `yaml:"timestamp_header"`
	Tolerance       time.Duration  `yaml:"tolerance" ferry:"default=5m"`
	Username        string         `yaml:"username"` // basic
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: webhook` source. It needs the
// application's Journal service, and traces requests with its Tracer
// service when there is one.
var Connector = ferry.SourceSpec[Config]{
	Name: "webhook",
	Build: func(name string, cfg *Config, env ferry.SourceEnv) (ferry.Source, error) {
		j, ok := ferry.Service[Journal](env)
		if !ok {
			return nil, fmt.Errorf("webhook source %s: the application offers no journal to keep requests in", name)
		}
		var opts []Option
		if t, ok := ferry.Service[Tracer](env); ok {
			opts = append(opts, WithTracer(t))
		}
		return ferry.AsSource(New(name, cfg, j, env.Log, opts...))
	},
}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, ferry.Invalid("listen", "must be host:port: %v", err))
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, ferry.Invalid("path", "must start with /, like /hooks/crm"))
	}
	for i, m := range c.Methods {
		if m != strings.ToUpper(m) || m == "" || strings.ContainsAny(m, " /") {
			errs = append(errs, ferry.Invalid(fmt.Sprintf("methods[%d]", i), "%q is not an HTTP method (write it in capitals)", m))
		}
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, ferry.Invalid("max_body_bytes", "must be positive"))
	}
	if c.IDHeader != "" && c.IDExpression != "" {
		errs = append(errs, ferry.Invalid("id_expression", "set id_header or id_expression, not both"))
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
