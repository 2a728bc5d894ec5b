// Package kafka is the Kafka sink: CloudEvents through an idempotent
// producer with acks=all, franz-go's (kgo, the default) or sarama's
// (client: sarama, for Kerberos), following the CloudEvents Kafka protocol
// binding (binary mode: ce_* headers, the data as the value; structured
// mode: the whole event as application/cloudevents+json).
package kafka

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// Config is the `type: kafka` sink block.
type Config struct {
	// Client is the Kafka client library: franz-go (gapless per-key
	// order, faster) or sarama (adds Kerberos: the GSSAPI mechanism).
	Client string `yaml:"client" ferry:"default=franz-go,enum=franz-go|sarama"`
	// Brokers are the host:port of one or more brokers to bootstrap from.
	Brokers []string `yaml:"brokers" ferry:"required,example=127.0.0.1:9092"`
	// Topic is a fixed topic; TopicExpression computes one per event (CEL
	// over the event, e.g. `db + "." + table`). Exactly one is set.
	Topic           string `yaml:"topic" ferry:"oneof=topic,example=orders"`
	TopicExpression string `yaml:"topic_expression" ferry:"oneof=topic"`
	// Key is the message key: partitionkey (the ordering key, i.e. the
	// partitionkey extension, else the subject, else the id), subject, id
	// or none.
	Key string `yaml:"key" ferry:"default=partitionkey,enum=partitionkey|subject|id|none"`
	// Mode is binary (ce_* headers, the data as the value) or structured
	// (the whole event as application/cloudevents+json).
	Mode string `yaml:"mode" ferry:"default=binary,enum=binary|structured"`
	// Compression of record batches.
	Compression string `yaml:"compression" ferry:"default=none,enum=none|gzip|snappy|lz4|zstd"`
	// ClientID names Ferry to the brokers (quotas, logs).
	ClientID string `yaml:"client_id" ferry:"default=ferry"`
	// MaxMessageBytes bounds a record batch; keep it at or below the
	// broker's message.max.bytes.
	MaxMessageBytes int `yaml:"max_message_bytes" ferry:"default=1000000"`
	// Version caps the Kafka protocol versions used, e.g. 2.8.0, for a
	// broker that mis-negotiates; by default the client negotiates with
	// each broker. With client sarama, which does not negotiate, it is
	// the version spoken, by default 2.8.0.
	Version string `yaml:"version" ferry:"example=3.7.0"`
	// Timeout bounds a dial, a request beyond the broker's own produce
	// timeout, and how long a Write's records may wait to be sent (then
	// they and the records behind them in their partition fail,
	// transiently; a request already sent is waited for).
	Timeout time.Duration `yaml:"timeout" ferry:"default=30s"`
	// TLS encrypts the connections to the brokers.
	TLS tlsconfig.Config `yaml:"tls"`
	// SASL authenticates to the brokers.
	SASL SASL `yaml:"sasl"`
	// Delivery is at_least_once (a crash may deliver a batch again) or
	// exactly_once: each Write is one Kafka transaction that also stores
	// the source position in checkpoint_topic, so consumers with
	// isolation.level=read_committed see every change once (franz-go
	// client only; the sink must be its source's only sink).
	Delivery string `yaml:"delivery" ferry:"default=at_least_once,enum=at_least_once|exactly_once"`
	// TransactionalID identifies the transactional producer with
	// exactly_once; by default ferry.<client_id>.<sink name>. It must be
	// stable across restarts and equal on HA replicas (a new producer
	// with it fences the old one) and unique per Ferry deployment
	// sharing a cluster.
	TransactionalID string `yaml:"transactional_id" ferry:"example=ferry.orders.kafka"`
	// CheckpointTopic holds the source positions committed with
	// exactly_once (created, compacted, if missing).
	CheckpointTopic string `yaml:"checkpoint_topic" ferry:"default=_ferry_checkpoints"`
}

// The delivery guarantees.
const (
	deliveryAtLeastOnce = "at_least_once"
	deliveryExactlyOnce = "exactly_once"
)

// ExactlyOnce implements ferry.ExactlyOnceSink.
func (c *Config) ExactlyOnce() bool { return c.Delivery == deliveryExactlyOnce }

// transactionalID is the configured id or the default.
func (c *Config) transactionalID(sink string) string {
	if c.TransactionalID != "" {
		return c.TransactionalID
	}
	return "ferry." + c.ClientID + "." + sink
}

// The clients.
const (
	clientFranz  = "franz-go"
	clientSarama = "sarama"
)

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: kafka` sink.
var Connector = ferry.SinkSpec[Config]{Name: "kafka",
	Build: func(name string, cfg *Config, env ferry.SinkEnv) (ferry.Sink, error) {
		s, err := New(name, cfg, env.Log)
		if err != nil || !cfg.ExactlyOnce() {
			return ferry.AsSink(s, err)
		}
		return &TxSink{Sink: s}, nil
	}}

var compressions = map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression()}

// maxBatchBytes is franz-go's upper bound of a record batch.
const maxBatchBytes = 1 << 30

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if c.TopicExpression != "" {
		if _, err := topicProgram(c.TopicExpression); err != nil {
			errs = append(errs, ferry.Invalid("topic_expression", "%v", err))
		}
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > maxBatchBytes {
		errs = append(errs, ferry.Invalid("max_message_bytes", "must be between 1024 and %d", maxBatchBytes))
	}
	if _, ok := maxVersions(c.Version); c.Version != "" && !ok {
		errs = append(errs, ferry.Invalid("version", "must be a Kafka version of 0.11.0 or later (idempotent producer), not %q", c.Version))
	} else if _, err := saramaVersion(c.Version); c.Client == clientSarama && err != nil {
		errs = append(errs, ferry.Invalid("version", "%v", err))
	}
	if c.Timeout <= 0 {
		errs = append(errs, ferry.Invalid("timeout", "must be positive"))
	}
	if c.Delivery == deliveryExactlyOnce && c.Client == clientSarama {
		errs = append(errs, ferry.Invalid("delivery", "exactly_once needs client franz-go: the sarama client's transactions are not supported by Ferry"))
	}
	if c.Delivery != deliveryExactlyOnce && c.TransactionalID != "" {
		errs = append(errs, ferry.Invalid("transactional_id", "is used only with delivery: exactly_once"))
	}
	if c.Delivery == deliveryExactlyOnce && c.CheckpointTopic == "" {
		errs = append(errs, ferry.Invalid("checkpoint_topic", "must not be empty with delivery: exactly_once"))
	}
	errs = append(errs, c.TLS.Validate("tls")...)
	errs = append(errs, c.SASL.validate(c.Client)...)
	return errors.Join(errs...)
}

var versionPattern = regexp.MustCompile(`^v?([1-9][0-9]*)\.[0-9]+(\.[0-9]+)?$`)

// maxVersions caps the requests at version v, as sarama's Version did; a
// release newer than franz-go's table caps nothing (nil). ok is false for
// a malformed version or one older than 0.11 (no idempotent produce).
func maxVersions(v string) (vs *kversion.Versions, ok bool) {
	if vs = kversion.FromString(v); vs != nil {
		produce, _ := vs.LookupMaxKeyVersion(0)
		return vs, produce >= 3 // Produce v3 came with 0.11
	}
	return nil, versionPattern.MatchString(v)
}

// clientOptions turns the block into franz-go's producer options. The
// client's defaults that matter here: idempotent writes with acks=all,
// unlimited internal retries, per-partition order, and gapless failure (see
// Sink.Write).
//
// With exactly_once the client is transactional (txnID): a failed record
// aborts its whole transaction, so records already sent need not be
// cancellable, and franz-go refuses that option with transactions.
func (c *Config) clientOptions(log kgo.Logger, txnID string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2, as Kafka's Java client
		kgo.ProducerBatchCompression(compressions[c.Compression]),
		kgo.ProducerBatchMaxBytes(int32(c.MaxMessageBytes)),
		// A Write waits for its last records: lingering only delays it.
		// (Lingering and flushing once all of a Write's records are
		// buffered sends a 1000-event Write in one request instead of
		// ~2.2, but costs a Write of one event an extra goroutine
		// hand-off, and measured no cheaper end to end; issue 18.)
		kgo.ProducerLinger(0),
		// Large enough that Produce never blocks inside a Write (see Write).
		kgo.MaxBufferedRecords(maxBuffered),
		kgo.DialTimeout(c.Timeout),
		// How soon a failed request reloads the metadata; records are
		// failed on their deadline at such a reload, so it is kept well
		// under the timeout (franz-go's default is 5s).
		kgo.MetadataMinAge(max(min(c.Timeout/4, 5*time.Second), 10*time.Millisecond)),
		kgo.RequestTimeoutOverhead(c.Timeout),
		kgo.DisableClientMetrics(), // Ferry exports its own
		// As sarama did: a cluster with auto.create.topics.enable creates
		// the topics topic_expression names.
		kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(log),
	}
	if txnID == "" {
		// A Write's context may fail records already sent (see Sink.Write).
		opts = append(opts, kgo.AllowIdempotentProduceCancellation())
	} else {
		opts = append(opts, kgo.TransactionalID(txnID),
			// A transaction lasts one Write, which the timeout bounds;
			// the broker aborts one left open by a crashed Ferry after
			// this (a successor's InitProducerId aborts it at once).
			kgo.TransactionTimeout(max(2*c.Timeout, 10*time.Second)))
	}
	if vs, _ := maxVersions(c.Version); vs != nil {
		opts = append(opts, kgo.MaxVersions(vs))
	}
	sec, err := kafkawire.SecurityOpts(&c.TLS, c.SASL.wire())
	if err != nil {
		return nil, err
	}
	opts = append(opts, sec...)
	if err := kgo.ValidateOpts(opts...); err != nil {
		return nil, fmt.Errorf("kafka producer configuration: %w", err)
	}
	return opts, nil
}
