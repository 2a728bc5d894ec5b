// Package eventbridge is the AWS EventBridge sink: CloudEvents as PutEvents
// entries, batched by the service's real limits (10 entries and 256 KB per
// call, sized the way AWS counts), sent concurrently, with every entry's
// result checked: a partial failure returns HTTP 200, so only the entries
// that failed are retried, never the ones already accepted.
package eventbridge

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: eventbridge` sink block.
type Config struct {
	// Region is the AWS region of the event bus.
	Region string `yaml:"region" ferry:"required,example=us-east-1"`
	// EventBus is the bus's name or ARN.
	EventBus string `yaml:"event_bus" ferry:"default=default"`
	// Endpoint overrides the service endpoint (VPC endpoints, tests).
	Endpoint string `yaml:"endpoint"`
	// Credentials come from the SDK's default chain (environment, shared
	// profile, web identity / IRSA, container and instance metadata)
	// unless static keys are given.
	AccessKeyID     string       `yaml:"access_key_id"`
	SecretAccessKey ferry.Secret `yaml:"secret_access_key"`
	SessionToken    ferry.Secret `yaml:"session_token"`
	// Source of every entry; default the CloudEvent source. A value
	// EventBridge reserves (aws.*) is prefixed with SourcePrefix.
	Source       string `yaml:"source"`
	SourcePrefix string `yaml:"source_prefix" ferry:"default=ferry."`
	// Detail is data (the event's data; a non-object is wrapped as
	// {"data": ...}) or event (the whole structured CloudEvent).
	Detail string `yaml:"detail" ferry:"default=data,enum=data|event"`
	// Resources is an optional CEL expression giving a list of ARNs.
	Resources   string        `yaml:"resources"`
	Concurrency int           `yaml:"concurrency" ferry:"default=4"` // PutEvents calls in flight
	Timeout     time.Duration `yaml:"timeout" ferry:"default=10s"`   // per call
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: eventbridge` sink. Loading the AWS
// configuration reads the environment and files only; credentials are
// fetched on the first call.
var Connector = ferry.SinkSpec[Config]{Name: "eventbridge",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		return ferry.AsSink(New(context.Background(), name, cfg, env.Log))
	}}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if c.EventBus == "" {
		errs = append(errs, ferry.Invalid("event_bus", "must not be empty (default: default)"))
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, ferry.Invalid("endpoint", "must be an absolute http(s) URL"))
		}
	}
	if (c.AccessKeyID == "") != !c.SecretAccessKey.IsSet() {
		errs = append(errs, ferry.Invalid("access_key_id", "access_key_id and secret_access_key go together"))
	}
	if strings.HasPrefix(c.Source, "aws.") || len(c.Source) > 256 {
		errs = append(errs, ferry.Invalid("source", "must be at most 256 characters and not start with aws."))
	}
	if strings.HasPrefix(c.SourcePrefix, "aws.") {
		errs = append(errs, ferry.Invalid("source_prefix", "must not start with aws."))
	}
	if c.Resources != "" {
		if _, err := resourcesProgram(c.Resources); err != nil {
			errs = append(errs, ferry.Invalid("resources", "%v", err))
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, ferry.Invalid("concurrency", "must be from 1 to 64"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, ferry.Invalid("timeout", "must be positive"))
	}
	return errors.Join(errs...)
}

// resourcesProgram compiles the resources expression: a list of strings
// from the event (id, source, type, subject, extensions, data).
func resourcesProgram(expr string) (cel.Program, error) {
	env, err := cel.NewEnv(
		cel.Variable("id", cel.StringType), cel.Variable("source", cel.StringType),
		cel.Variable("type", cel.StringType), cel.Variable("subject", cel.StringType),
		cel.Variable("extensions", cel.MapType(cel.StringType, cel.DynType)), cel.Variable("data", cel.DynType),
	)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, errors.New(strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.ListType(cel.StringType)) && !t.IsExactType(cel.DynType) &&
		!t.IsExactType(cel.ListType(cel.DynType)) {
		return nil, errors.New("must evaluate to a list of strings")
	}
	return env.Program(ast)
}
