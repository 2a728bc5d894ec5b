// Package kafka is the Kafka sink: CloudEvents through sarama's idempotent
// async producer with acks=all, following the CloudEvents Kafka protocol
// binding (binary mode: ce_* headers, the data as the value; structured
// mode: the whole event as application/cloudevents+json).
package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// Config is the `type: kafka` sink block.
type Config struct {
	Brokers []string `yaml:"brokers"`
	// Topic is a fixed topic; TopicExpression computes one per event (CEL
	// over the event, e.g. `db + "." + table`). Exactly one is set.
	Topic           string `yaml:"topic"`
	TopicExpression string `yaml:"topic_expression"`
	// Key is the message key: partitionkey (default), subject, id or none.
	Key             string           `yaml:"key"`
	Mode            string           `yaml:"mode"`        // binary | structured
	Compression     string           `yaml:"compression"` // none | gzip | snappy | lz4 | zstd
	ClientID        string           `yaml:"client_id"`
	MaxMessageBytes int              `yaml:"max_message_bytes"` // keep at or below the broker's limit
	Version         string           `yaml:"version"`           // Kafka protocol version, e.g. 2.8.0
	Timeout         time.Duration    `yaml:"timeout"`           // dial, read and write timeouts
	TLS             tlsconfig.Config `yaml:"tls"`
	SASL            SASL             `yaml:"sasl"`
}

// SASL authenticates to the brokers.
type SASL struct {
	Mechanism string       `yaml:"mechanism"` // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string       `yaml:"username"`
	Password  ferry.Secret `yaml:"password"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config {
	return &Config{Key: "partitionkey", Mode: "binary", Compression: "none", ClientID: "ferry",
		MaxMessageBytes: 1000000, Version: "2.8.0", Timeout: 30 * time.Second}
}

var compressions = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, ferry.Invalid("brokers", "is required: host:port of one or more brokers"))
	}
	switch {
	case (c.Topic == "") == (c.TopicExpression == ""):
		errs = append(errs, ferry.Invalid("topic", "set topic (a fixed name) or topic_expression (CEL), one of them"))
	case c.TopicExpression != "":
		if _, err := topicProgram(c.TopicExpression); err != nil {
			errs = append(errs, ferry.Invalid("topic_expression", "%v", err))
		}
	}
	if c.Key != "partitionkey" && c.Key != "subject" && c.Key != "id" && c.Key != "none" {
		errs = append(errs, ferry.Invalid("key", "must be partitionkey, subject, id or none, not %q", c.Key))
	}
	if c.Mode != "binary" && c.Mode != "structured" {
		errs = append(errs, ferry.Invalid("mode", "must be binary or structured, not %q", c.Mode))
	}
	if _, ok := compressions[c.Compression]; !ok {
		errs = append(errs, ferry.Invalid("compression", "must be none, gzip, snappy, lz4 or zstd, not %q", c.Compression))
	}
	if c.MaxMessageBytes < 1024 {
		errs = append(errs, ferry.Invalid("max_message_bytes", "must be at least 1024"))
	}
	if v, err := sarama.ParseKafkaVersion(c.Version); err != nil || !v.IsAtLeast(sarama.V0_11_0_0) {
		errs = append(errs, ferry.Invalid("version", "must be a Kafka version of 0.11.0 or later (idempotent producer), not %q", c.Version))
	}
	if c.Timeout <= 0 {
		errs = append(errs, ferry.Invalid("timeout", "must be positive"))
	}
	errs = append(errs, c.TLS.Validate("tls")...)
	errs = append(errs, c.SASL.validate()...)
	return errors.Join(errs...)
}

func (s *SASL) validate() []error {
	switch s.Mechanism {
	case "":
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if s.Username == "" || !s.Password.IsSet() {
			return []error{ferry.Invalid("sasl", "needs username and password")}
		}
		return nil
	}
	return []error{ferry.Invalid("sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not %q", s.Mechanism)}
}

// saramaConfig turns the block into sarama's producer configuration.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version, _ = sarama.ParseKafkaVersion(c.Version) // validated
	p := &sc.Producer
	p.RequiredAcks = sarama.WaitForAll
	p.Idempotent = true // with one request in flight: no duplicates, order kept on retries
	sc.Net.MaxOpenRequests = 1
	p.Retry.Max, p.Retry.Backoff = 10, 100*time.Millisecond
	p.Return.Successes, p.Return.Errors = true, true
	p.Compression = compressions[c.Compression]
	p.MaxMessageBytes = c.MaxMessageBytes
	// A Write ends by waiting for its last partial batch to be flushed:
	// a short timer matters more than big requests (5ms: 122k ev/s, 1ms: 191k).
	p.Flush.Bytes, p.Flush.Frequency = 512<<10, time.Millisecond
	p.Partitioner = sarama.NewHashPartitioner // one key, one partition
	sc.ChannelBufferSize = 16384
	sc.Net.DialTimeout, sc.Net.ReadTimeout, sc.Net.WriteTimeout = c.Timeout, c.Timeout, c.Timeout
	if !c.TLS.IsZero() {
		t, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, t
	}
	if c.SASL.Mechanism != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.User, sc.Net.SASL.Password = c.SASL.Username, c.SASL.Password.Reveal()
		switch c.SASL.Mechanism {
		case "PLAIN":
			sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		case "SCRAM-SHA-256":
			sc.Net.SASL.Mechanism, sc.Net.SASL.SCRAMClientGeneratorFunc = sarama.SASLTypeSCRAMSHA256, scramSHA256
		case "SCRAM-SHA-512":
			sc.Net.SASL.Mechanism, sc.Net.SASL.SCRAMClientGeneratorFunc = sarama.SASLTypeSCRAMSHA512, scramSHA512
		}
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka producer configuration: %w", err)
	}
	return sc, nil
}
