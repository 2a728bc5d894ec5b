package kafka

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// saramaRetryMax bounds sarama's retries of one batch. sarama allocates a
// slot per retry level for each partition it writes (32 bytes each, so
// 256 KiB a partition), and gives a batch up only after this many
// attempts, at least saramaBackoffMax apart once the backoff has grown:
// over two hours of a partition that cannot be written. See
// saramaProducer for why giving up is what can break order.
const saramaRetryMax = 1 << 13

// saramaBackoffMax caps the backoff between sarama's retries; it is also
// kept under a quarter of the timeout, so a Write retries several times
// within its deadline.
const saramaBackoffMax = time.Second

// saramaVersion is the protocol version sarama speaks: the version key,
// capped at the newest sarama knows, else sarama's default (2.8.0).
// Idempotent produce needs 0.11.
func saramaVersion(v string) (sarama.KafkaVersion, error) {
	if v == "" {
		return sarama.DefaultVersion, nil
	}
	kv, err := sarama.ParseKafkaVersion(v)
	if err != nil {
		return kv, fmt.Errorf("sarama cannot parse Kafka version %q: %w", v, err)
	}
	if !kv.IsAtLeast(sarama.V0_11_0_0) {
		return kv, fmt.Errorf("must be a Kafka version of 0.11.0 or later (idempotent producer), not %q", v)
	}
	if kv.IsAtLeast(sarama.MaxVersion) {
		kv = sarama.MaxVersion
	}
	return kv, nil
}

var saramaCompressions = map[string]sarama.CompressionCodec{"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP,
	"snappy": sarama.CompressionSnappy, "lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD}

// saramaConfig turns the block into sarama's configuration: the
// idempotent producer (acks=all, one request in flight per broker, so a
// retried batch cannot be overtaken), retries with backoff inside a
// Write's deadline, and the same keys as franz-go where they mean the
// same.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	sc := sarama.NewConfig()
	var err error
	if sc.Version, err = saramaVersion(c.Version); err != nil {
		return nil, err
	}
	sc.ClientID = c.ClientID
	sc.ChannelBufferSize = 4096
	sc.Net.MaxOpenRequests = 1
	sc.Net.DialTimeout, sc.Net.ReadTimeout, sc.Net.WriteTimeout = c.Timeout, c.Timeout, c.Timeout
	sc.Metadata.AllowAutoTopicCreation = true // as with franz-go
	sc.Metadata.Full = false
	p := &sc.Producer
	p.Idempotent = true
	p.RequiredAcks = sarama.WaitForAll
	p.Timeout = c.Timeout
	p.Return.Successes, p.Return.Errors = true, true
	p.Partitioner = sarama.NewMurmur2Partitioner // Kafka's Java client's, as franz-go's
	p.Compression = saramaCompressions[c.Compression]
	p.MaxMessageBytes = c.MaxMessageBytes
	p.Retry.Max = saramaRetryMax
	capBackoff := max(min(c.Timeout/4, saramaBackoffMax), time.Millisecond)
	p.Retry.Backoff = min(100*time.Millisecond, capBackoff)
	p.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(50*time.Millisecond<<min(retries, 8), capBackoff)
	}
	if !c.TLS.IsZero() {
		tc, err := c.TLS.Build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable, sc.Net.TLS.Config = true, tc
	}
	c.SASL.applySarama(sc)
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("sarama configuration: %w", err)
	}
	return sc, nil
}

// applySarama sets sarama's SASL configuration.
func (s *SASL) applySarama(sc *sarama.Config) {
	if s.Mechanism == "" {
		return
	}
	n := &sc.Net.SASL
	n.Enable, n.Handshake, n.Mechanism = true, true, sarama.SASLMechanism(s.Mechanism)
	n.User, n.Password = s.Username, s.Password.Reveal()
	switch s.Mechanism {
	case "SCRAM-SHA-256":
		n.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mech: func(a scram.Auth) sasl.Mechanism { return a.AsSha256Mechanism() }}
		}
	case "SCRAM-SHA-512":
		n.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient {
			return &scramClient{mech: func(a scram.Auth) sasl.Mechanism { return a.AsSha512Mechanism() }}
		}
	case "GSSAPI":
		g := &s.GSS
		k, _ := g.load() // validated: only the realm is needed
		n.GSSAPI = sarama.GSSAPIConfig{AuthType: sarama.KRB5_KEYTAB_AUTH, KeyTabPath: g.KeytabFile,
			KerberosConfigPath: g.KerberosConfigFile, ServiceName: g.ServiceName, Username: g.Username,
			Realm: k.realm, DisablePAFXFAST: g.DisablePAFXFAST}
		if g.Auth == "password" {
			n.GSSAPI.AuthType, n.GSSAPI.Password = sarama.KRB5_USER_AUTH, g.Password.Reveal()
		}
	}
}

// scramClient is sarama's SCRAM client interface over franz-go's SCRAM
// implementation, the one the default client and the Kafka source use
// (sarama ships none of its own).
type scramClient struct {
	mech       func(scram.Auth) sasl.Mechanism
	user, pass string
	sess       sasl.Session
	done       bool
}

func (c *scramClient) Begin(user, pass, _ string) error {
	c.user, c.pass, c.sess, c.done = user, pass, nil, false
	return nil
}

// Step returns the client-first message on the first call, then answers
// each server message.
func (c *scramClient) Step(challenge string) (string, error) {
	if c.sess == nil {
		sess, first, err := c.mech(scram.Auth{User: c.user, Pass: c.pass}).Authenticate(context.Background(), "")
		c.sess = sess
		return string(first), err
	}
	done, resp, err := c.sess.Challenge([]byte(challenge))
	c.done = done
	return string(resp), err
}

func (c *scramClient) Done() bool { return c.done }

// obtainTickets logs in to the KDC with sarama's Kerberos client (gokrb5,
// the one sarama authenticates with) and asks for the service ticket of
// each seed broker, so that a login the KDC refuses is this Write's error
// with the KDC's answer, instead of sarama's "run out of available
// brokers". sarama then logs in again for each connection.
func obtainTickets(g *sarama.GSSAPIConfig, brokers []string) (spns []string, err error) {
	kc, err := sarama.NewKerberosClient(g)
	if err != nil {
		return nil, fmt.Errorf("kerberos client for %s@%s: %w", g.Username, g.Realm, err)
	}
	defer kc.Destroy()
	if err := kc.Login(); err != nil {
		return nil, fmt.Errorf("kerberos: the KDC refused a ticket to %s@%s: %w", g.Username, g.Realm, err)
	}
	for _, b := range brokers {
		host, _, err := net.SplitHostPort(b)
		if err != nil {
			host = b
		}
		spn := g.ServiceName + "/" + host
		if _, _, err := kc.GetServiceTicket(spn); err != nil {
			return nil, fmt.Errorf("kerberos: the KDC refused a service ticket for %s to %s@%s: %w", spn, g.Username, g.Realm, err)
		}
		spns = append(spns, spn)
	}
	return spns, nil
}
