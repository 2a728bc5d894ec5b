// Package nats is the NATS JetStream sink: CloudEvents published to a
// stream with the NATS protocol binding (binary mode: ce-* headers and the
// data as the payload; structured mode: the whole event as
// application/cloudevents+json), each acknowledged by the stream
// (PubAck), with the event id as Nats-Msg-Id so a retry within the
// stream's duplicate window is stored once.
package nats

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// Config is the `type: nats` sink block.
type Config struct {
	// URL is the server to connect to, nats://host:4222 (tls:// for TLS);
	// several, comma-separated, for a cluster.
	URL string `yaml:"url" ferry:"required,example=nats://127.0.0.1:4222"`
	// Subject is a fixed subject; SubjectExpression computes one per event
	// (CEL over the event, e.g. `"cdc." + db + "." + table`). Exactly one
	// is set, and a stream must capture the subjects.
	Subject           string `yaml:"subject" ferry:"oneof=subject,example=ferry.events"`
	SubjectExpression string `yaml:"subject_expression" ferry:"oneof=subject"`
	// Mode is binary (ce-* headers, the data as the payload) or
	// structured (the whole event as application/cloudevents+json).
	Mode string `yaml:"mode" ferry:"default=binary,enum=binary|structured"`
	// Stream, when set, is the stream the subjects must belong to: a
	// publish another stream captures fails, permanently.
	Stream string `yaml:"stream"`
	// Timeout bounds the wait for each acknowledgement.
	Timeout time.Duration `yaml:"timeout" ferry:"default=10s"`
	// Name is the client name the server shows for the connection.
	Name string `yaml:"name" ferry:"default=ferry"`
	// Credentials is a .creds file (user JWT and NKey seed); or Token, or
	// User and Password, authenticate instead.
	Credentials string       `yaml:"credentials"`
	Token       ferry.Secret `yaml:"token"`
	User        string       `yaml:"user"`
	Password    ferry.Secret `yaml:"password"`
	// TLS verifies the server (and presents a client certificate) beyond
	// the system's trusted roots; tls:// URLs use TLS with no keys set.
	TLS tlsconfig.Config `yaml:"tls"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: nats` sink.
var Connector = ferry.SinkSpec[Config]{Name: "nats",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		return ferry.AsSink(New(name, cfg, env.Log))
	}}

// Validate reports what the ferry tags cannot: URLs, subjects, the
// subject expression and the authentication keys that go together.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, ferry.Invalid(field, format, args...)) }
	for _, u := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" || !validScheme[p.Scheme] {
			bad("url", "%q must be nats://host:port (or tls://, ws://, wss://)", strings.TrimSpace(u))
		}
	}
	if c.Subject != "" {
		if err := checkSubject(c.Subject); err != nil {
			bad("subject", "%v", err)
		}
	}
	if c.SubjectExpression != "" {
		if _, err := subjectProgram(c.SubjectExpression); err != nil {
			bad("subject_expression", "%v", err)
		}
	}
	if c.Timeout <= 0 {
		bad("timeout", "must be positive, like 10s")
	}
	auths := 0
	for _, set := range []bool{c.Credentials != "", c.Token.IsSet(), c.User != ""} {
		if set {
			auths++
		}
	}
	if auths > 1 {
		bad("credentials", "set one of credentials, token or user (with password)")
	}
	if c.User != "" && !c.Password.IsSet() || c.User == "" && c.Password.IsSet() {
		bad("user", "user and password go together")
	}
	if c.Credentials != "" {
		if f, err := os.Open(c.Credentials); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			bad("credentials", "cannot read %s: %v", c.Credentials, err)
		} else {
			_ = f.Close()
		}
	}
	errs = append(errs, c.TLS.Validate("tls")...)
	return errors.Join(errs...)
}

var validScheme = map[string]bool{"nats": true, "tls": true, "ws": true, "wss": true}

// checkSubject refuses what a publish subject cannot be: empty tokens,
// white space, control characters and the wildcards * and >.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	for _, tok := range strings.Split(s, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token (a leading, trailing or doubled dot)", s)
		case tok == "*" || tok == ">":
			return fmt.Errorf("%q has a wildcard, which a publish cannot use", s)
		case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return fmt.Errorf("%q has white space or a control character", s)
		}
	}
	return nil
}
