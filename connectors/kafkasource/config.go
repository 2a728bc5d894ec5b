package kafkasource

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// Config is the `type: kafka` source block.
type Config struct {
	// Brokers are the host:port of one or more brokers to bootstrap from.
	Brokers []string `yaml:"brokers" ferry:"required,example=127.0.0.1:9092"`
	// Topics are consumed by name; TopicRegex instead consumes every topic
	// whose whole name matches (new ones as they appear). Exactly one is set.
	Topics     []string `yaml:"topics" ferry:"oneof=topics,example=orders"`
	TopicRegex string   `yaml:"topic_regex" ferry:"oneof=topics"`
	// Group is the consumer group: its committed offsets are where reading
	// resumes, and the group spreads partitions over the Ferry instances
	// sharing it.
	Group string `yaml:"group" ferry:"required,example=ferry-legacy"`
	// Start is where a partition the group has no committed offset for
	// begins: earliest, latest, an RFC 3339 time (the first record at or
	// after it), or committed (refuse to start one: the group must have
	// committed it). Once set it is committed at once.
	Start string `yaml:"start" ferry:"default=earliest,enum=earliest|latest|committed,pattern=^[0-9]{4}-[0-9]{2}-[0-9]{2}T"`
	// GroupInstanceID makes this process a static member of the group
	// (Kafka's group.instance.id): restarted under the same id, even after
	// kill -9, it gets its partitions back at once, with no wait for its
	// old session to time out. Give each process sharing the group its own
	// stable id (a StatefulSet pod name, a host name): two running with one
	// id fence each other. A static member does not leave the group when
	// it stops, so its partitions go to the others only after
	// session_timeout.
	GroupInstanceID string `yaml:"group_instance_id" ferry:"example=ferry-b-0"`
	// SessionTimeout is how long the group waits for a member that stopped
	// heartbeating (a crash, a network partition) before giving its
	// partitions to others, or, without group_instance_id, to the same
	// process restarted. It must lie within the brokers'
	// group.min.session.timeout.ms and group.max.session.timeout.ms (6s
	// and 30m by default).
	SessionTimeout time.Duration `yaml:"session_timeout" ferry:"default=10s"`
	// ClientID names Ferry to the brokers (quotas, logs).
	ClientID string `yaml:"client_id" ferry:"default=ferry"`
	// CommitInterval is how often delivered offsets are committed (also on
	// a rebalance and on stop); a crash re-delivers at most this much.
	CommitInterval time.Duration `yaml:"commit_interval" ferry:"default=1s"`
	// MaxBatch bounds the records one read hands the pipeline.
	MaxBatch int `yaml:"max_batch" ferry:"default=1000"`
	// Timeout bounds a dial and each request beyond its own timeout.
	Timeout time.Duration `yaml:"timeout" ferry:"default=30s"`
	// TLS encrypts the connections to the brokers.
	TLS tlsconfig.Config `yaml:"tls"`
	// SASL authenticates to the brokers.
	SASL kafkawire.SASL `yaml:"sasl"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: kafka` source.
var Connector = ferry.SourceSpec[Config]{
	Name: "kafka",
	Build: func(name string, cfg *Config, env ferry.SourceEnv) (ferry.Source, error) {
		return ferry.AsSource(New(name, cfg, env.Log))
	},
	PositionCodec: Codec{},
}

// Validate reports what the tags cannot: the pattern, the start time, and
// positive durations and sizes.
func (c *Config) Validate() error {
	var errs []error
	if c.TopicRegex != "" {
		if _, err := regexp.Compile(c.TopicRegex); err != nil {
			errs = append(errs, ferry.Invalid("topic_regex", "%v", err))
		}
	}
	for i, t := range c.Topics {
		if t == "" {
			errs = append(errs, ferry.Invalid(fmt.Sprintf("topics[%d]", i), "is empty"))
		}
	}
	if _, err := parseStart(c.Start); err != nil {
		errs = append(errs, ferry.Invalid("start", "%v", err))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, ferry.Invalid("commit_interval", "must be positive"))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, ferry.Invalid("max_batch", "must be at least 1"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, ferry.Invalid("timeout", "must be positive"))
	}
	if c.SessionTimeout < time.Second {
		errs = append(errs, ferry.Invalid("session_timeout", "must be at least 1s (brokers refuse less than group.min.session.timeout.ms, 6s by default), not %v", c.SessionTimeout))
	}
	if strings.TrimSpace(c.GroupInstanceID) != c.GroupInstanceID {
		errs = append(errs, ferry.Invalid("group_instance_id", "has leading or trailing spaces"))
	}
	errs = append(errs, c.TLS.Validate("tls")...)
	errs = append(errs, c.SASL.Validate()...)
	return errors.Join(errs...)
}

// start is a parsed Start.
type start struct {
	kind string    // earliest | latest | committed | time
	at   time.Time // kind time
}

func parseStart(s string) (start, error) {
	switch s {
	case "earliest", "latest", "committed":
		return start{kind: s}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return start{}, fmt.Errorf("must be earliest, latest, committed or an RFC 3339 time (2026-01-02T15:04:05Z), not %q", s)
	}
	return start{kind: "time", at: t}, nil
}

// clientOptions turns the block into franz-go's group consumer options.
// Offsets are committed by the source alone (never automatically), and a
// rebalance waits until a polled batch is registered (BlockRebalanceOnPoll),
// so no record is handed to the pipeline for a partition already revoked.
func (c *Config) clientOptions(log kgo.Logger, group []kgo.Opt) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.ConsumerGroup(c.Group),
		kgo.SessionTimeout(c.SessionTimeout),
		// A third of the session, as Kafka advises, and never less often
		// than franz-go's default.
		kgo.HeartbeatInterval(min(3*time.Second, c.SessionTimeout/3)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Reading from the start is what no committed offset or an offset
		// out of range (records deleted by retention) falls back to: it
		// re-reads rather than skips. The configured start is applied by
		// committing it when a partition is first assigned (assign.go).
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Records of aborted transactions never become events.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DialTimeout(c.Timeout),
		kgo.RequestTimeoutOverhead(c.Timeout),
		kgo.DisableClientMetrics(),
		kgo.WithLogger(log),
	}
	if c.GroupInstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.GroupInstanceID))
	}
	if c.TopicRegex != "" {
		// franz-go matches a pattern anywhere in a name; the contract is
		// the whole name.
		opts = append(opts, kgo.ConsumeRegex(), kgo.ConsumeTopics("^(?:"+c.TopicRegex+")$"))
	} else {
		opts = append(opts, kgo.ConsumeTopics(c.Topics...))
	}
	opts = append(opts, group...)
	sec, err := kafkawire.SecurityOpts(&c.TLS, &c.SASL)
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	if err := kgo.ValidateOpts(opts...); err != nil {
		return nil, fmt.Errorf("kafka consumer configuration: %w", err)
	}
	return opts, nil
}
