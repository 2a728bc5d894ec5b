// Package config loads Ferry's YAML configuration: several files merged,
// ${VAR} and ${file:PATH} expanded, decoded strictly (unknown keys are
// errors), validated, and every problem reported at once as
// file:line:col: path: message.
package config

import (
	"maps"
	"net"
	"slices"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/retry"
	"github.com/ferry-cdc/ferry/transform"
)

// Registry tells the loader which connector types exist and gives a fresh,
// defaults-filled pointer to each type's configuration struct. Connector
// structs are plain structs with `yaml:"key"` tags; if the pointer
// implements Validator, Validate is called after decoding.
type Registry interface {
	NewSourceConfig(typ string) (cfg any, ok bool)
	NewSinkConfig(typ string) (cfg any, ok bool)
	SourceTypes() []string
	SinkTypes() []string
}

// Config is a loaded, valid configuration.
type Config struct {
	Files      []string
	State      State    `yaml:"state"`
	Admin      Admin    `yaml:"admin"`
	Log        Log      `yaml:"log"`
	Pipeline   Pipeline `yaml:"pipeline"`
	Defaults   Defaults `yaml:"defaults"`
	Sources    map[string]*Source
	Transforms []*Transform
	Sinks      map[string]*Sink
	// HA is the `ha:` block; nil when replicas are not configured.
	HA *HA `yaml:"ha"`
	// Tracing is the `tracing:` block (OpenTelemetry span export).
	Tracing Tracing `yaml:"tracing"`

	positions map[string]Pos
	redactor  Redactor
}

// State is where Ferry keeps checkpoints and dead letters.
type State struct {
	Dir                string        `yaml:"dir" ferry:"default=./.ferry"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" ferry:"default=1s"`
	// Checkpoints is where source checkpoints live: the embedded store
	// under Dir (the default) or a table shared by replicas.
	Checkpoints Checkpoints `yaml:"checkpoints"`
}

// Checkpoints selects the checkpoint store. Type mysql keeps them in a
// table, on the server of the named mysql source (its addr, user and
// password) unless addr is given.
type Checkpoints struct {
	// Type is embedded (the state store under dir) or mysql (a table).
	Type     string       `yaml:"type" ferry:"default=embedded,enum=embedded|mysql"`
	Source   string       `yaml:"source"`
	Addr     string       `yaml:"addr"`
	User     string       `yaml:"user"`
	Password ferry.Secret `yaml:"password"`
	Database string       `yaml:"database"`
	Table    string       `yaml:"table" ferry:"default=ferry_checkpoints"`
}

// HA elects one streaming replica among several running the same
// configuration; the others wait as standbys.
type HA struct {
	// Lease is where the lock lives: mysql (the default; a lock on the
	// source's server) or kubernetes (a Lease object).
	Lease string `yaml:"lease" ferry:"enum=mysql|kubernetes"`
	// Name is the lock or Lease name; default "ferry-" + Source (mysql) or
	// "ferry" (kubernetes).
	Name string `yaml:"name"`
	// Source names the mysql source whose server holds the lock; default the
	// only mysql source.
	Source        string          `yaml:"source"`
	RenewInterval time.Duration   `yaml:"renew_interval"`
	Kubernetes    KubernetesLease `yaml:"kubernetes"`
}

// KubernetesLease is a coordination.k8s.io/v1 Lease reached through the
// API server with the pod's service account; empty fields come from the
// in-cluster environment.
type KubernetesLease struct {
	Namespace     string        `yaml:"namespace"`
	Identity      string        `yaml:"identity"`
	LeaseDuration time.Duration `yaml:"lease_duration"`
	APIServer     string        `yaml:"api_server"`
	TokenFile     string        `yaml:"token_file"`
	CAFile        string        `yaml:"ca_file"`
}

// Admin is the operator listener; an empty Listen disables it.
type Admin struct {
	Listen string `yaml:"listen" ferry:"default=127.0.0.1:9090"`
	// MaxLag, when positive, makes /readyz fail while a source lags more;
	// 0 (the default) leaves lag out of readiness.
	MaxLag time.Duration `yaml:"max_lag"`
	// Token, when set, is the bearer token every endpoint but /healthz and
	// /readyz requires (normally ${file:...} from a mounted secret).
	// Without it the work endpoints answer only on loopback.
	Token ferry.Secret `yaml:"token"`
	// MetricsPublic leaves /metrics open without the token, for a
	// Prometheus that cannot send one.
	MetricsPublic bool `yaml:"metrics_public"`
	// Pprof serves Go's runtime profiles (CPU, heap, goroutines, mutex,
	// block) under /debug/pprof/ for profiling a running ferry. It needs
	// token: a profile shows code paths and timings, and a CPU profile
	// costs CPU while it runs, so it is never open without one.
	Pprof bool `yaml:"pprof"`
	// TLS serves the listener over HTTPS, optionally with client
	// certificates (mutual TLS).
	TLS AdminTLS `yaml:"tls"`
}

// AdminTLS is the admin listener's certificate and, for mutual TLS, the
// CAs client certificates must chain to.
type AdminTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the admin listener serves HTTPS.
func (t AdminTLS) Enabled() bool { return t.CertFile != "" }

// Exposed reports whether the admin listener is reachable from other
// hosts without a token or client certificates: its work endpoints then answer 403 there, and
// its status and metrics answer anyone.
func (a Admin) Exposed() bool {
	if a.Listen == "" || a.Token.IsSet() || a.TLS.ClientCAFile != "" {
		return false
	}
	host, _, err := net.SplitHostPort(a.Listen)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host != "localhost" && (ip == nil || !ip.IsLoopback())
}

// Log configures Ferry's own log lines.
type Log struct {
	Level  string `yaml:"level" ferry:"default=info,enum=debug|info|warn|error"`
	Format string `yaml:"format" ferry:"default=text,enum=text|json"`
}

// maxSinkLinger caps pipeline.sink_linger: it trades latency for CPU, and
// more than a second of it is a mistake, not a trade.
const maxSinkLinger = time.Second

// Pipeline bounds memory and shutdown.
type Pipeline struct {
	MaxInFlight int `yaml:"max_in_flight" ferry:"default=10000"`
	// MaxInFlightBytes bounds the same changes by their size in memory.
	MaxInFlightBytes int           `yaml:"max_in_flight_bytes" ferry:"default=16777216"`
	ShutdownTimeout  time.Duration `yaml:"shutdown_timeout" ferry:"default=30s"`
	// SinkLinger, when positive, lets a sink wait this long for more
	// events when a Write would carry fewer than a full batch and events
	// arrive more often than that, so a steady trickle of small
	// transactions shares Writes (one produce round trip, one request)
	// instead of paying one each: less broker CPU per change for at most
	// this much more latency; a lone change is written at once. 0 (the
	// default) writes at once.
	SinkLinger time.Duration `yaml:"sink_linger"`
	// DeadLetterSink, when set, receives dead letters as CloudEvents
	// (anything it does not accept still goes to the state store).
	DeadLetterSink string `yaml:"dead_letter_sink"`
}

// Defaults apply to changes no rule matches.
type Defaults struct {
	TypePrefix string   `yaml:"type_prefix" ferry:"default=ferry"`
	To         []string `yaml:"to"`
}

// Source is one named source block.
type Source struct {
	Name string
	Type string
	Spec any // the connector's configuration struct, decoded
}

// Sink is one named sink block.
type Sink struct {
	Name  string
	Type  string
	Retry RetryPolicy
	Spec  any
}

// RetryPolicy is the common `retry:` key of every sink, declared once in
// package retry (which the pipeline's sink retries use too).
type RetryPolicy = retry.Policy

// Transform is one rule as written: package transform declares its keys
// and compiles it.
type Transform = transform.Rule

// Outbox routes the rows of a transactional-outbox table as events (see
// transform.Outbox).
type Outbox = transform.Outbox

// EventSpec holds CEL expressions for CloudEvent attributes (see
// transform.EventExprs).
type EventSpec = transform.EventExprs

// defaults are the ferry tags' defaults, and tracing's.
func defaults() *Config {
	c := ferry.Defaults[Config]()
	c.Tracing = defaultTracing()
	c.Sources, c.Sinks = map[string]*Source{}, map[string]*Sink{}
	return c
}

func defaultRetry() RetryPolicy { return *ferry.Defaults[RetryPolicy]() }

// Position returns where the key at path was written, or the zero Pos.
func (c *Config) Position(path string) Pos { return c.positions[path] }

// Errorf builds a positioned error for path, for later stages (rule
// compilation) that find problems of their own.
func (c *Config) Errorf(path, format string, args ...any) *Error {
	e := newError(c.positions, path, format, args...)
	e.Msg = c.redactor.Redact(e.Msg)
	return e
}

// SourceNames returns the source names, sorted.
func (c *Config) SourceNames() []string { return slices.Sorted(maps.Keys(c.Sources)) }

// SinkNames returns the sink names, sorted.
func (c *Config) SinkNames() []string { return slices.Sorted(maps.Keys(c.Sinks)) }
