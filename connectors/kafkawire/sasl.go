// Package kafkawire is what the Kafka sink and the Kafka source share: SASL
// authentication, the bridge from franz-go's logger to slog, and the
// CloudEvents Kafka protocol binding's header names and its reading side.
package kafkawire

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/tlsconfig"
)

// SASL authenticates to the brokers.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL.
	Mechanism string       `yaml:"mechanism" ferry:"enum=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512"`
	Username  string       `yaml:"username"`
	Password  ferry.Secret `yaml:"password"`
}

// Validate reports what the tags cannot: a mechanism needs both
// credentials.
func (s *SASL) Validate() []error {
	if s.Mechanism != "" && (s.Username == "" || !s.Password.IsSet()) {
		return []error{ferry.Invalid("sasl", "needs username and password")}
	}
	return nil
}

// Opts returns the client option that authenticates with the block, or
// none when no mechanism is set.
func (s *SASL) Opts() []kgo.Opt {
	user, pass := s.Username, s.Password.Reveal()
	switch s.Mechanism {
	case "PLAIN":
		return []kgo.Opt{kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())}
	case "SCRAM-SHA-256":
		return []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())}
	case "SCRAM-SHA-512":
		return []kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}
	}
	return nil
}

// SecurityOpts returns the client options of a connector's tls and sasl
// blocks (none for zero blocks).
func SecurityOpts(t *tlsconfig.Config, s *SASL) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if !t.IsZero() {
		c, err := t.Build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(c))
	}
	return append(opts, s.Opts()...), nil
}

// Logger passes franz-go's own messages to a connector's logger. Its
// warnings repeat on every retry during an outage, which the pipeline
// already reports, so they go to debug; its errors become warnings.
type Logger struct{ Slog *slog.Logger }

// Level asks franz-go for warnings and errors only.
func (Logger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

// Log implements kgo.Logger.
func (l Logger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	if level == kgo.LogLevelError {
		lv = slog.LevelWarn
	}
	l.Slog.Log(context.Background(), lv, "kafka client: "+msg, keyvals...)
}
