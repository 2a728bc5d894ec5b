// Package mysql is Ferry's MySQL and MariaDB binlog source.
//
// It replicates like a replica does (COM_BINLOG_DUMP through go-mysql's
// BinlogSyncer) and decodes every row event with the table metadata the
// server wrote next to it (binlog_row_metadata=FULL), so each change is
// decoded with the column names, types and character sets of its own time,
// not with today's schema. Transactions are assembled and emitted only at
// COMMIT; rolled-back ones are discarded; checkpoints are taken only at
// transaction boundaries, as FILE:POS plus the GTID state.
package mysql

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Config is the `type: mysql` source block.
type Config struct {
	// Addr is the host:port of the MySQL or MariaDB server.
	Addr string `yaml:"addr" ferry:"required,example=127.0.0.1:3306"`
	// User and Password are the replication account's.
	User     string       `yaml:"user" ferry:"required,example=ferry"`
	Password ferry.Secret `yaml:"password"`
	// ServerID identifies Ferry to the server as a replica; it must differ
	// from the server's and every other replica's server_id.
	ServerID uint32 `yaml:"server_id" ferry:"required,example=4101"`
	// Flavor is auto (detected from VERSION()), mysql or mariadb.
	Flavor string `yaml:"flavor" ferry:"default=auto,enum=auto|mysql|mariadb"`
	// Include and Exclude are DB.TABLE patterns; * and ? are wildcards
	// within one name. An empty Include means every non-system table.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// ExcludeColumns are DB.TABLE.COLUMN patterns removed from every image.
	ExcludeColumns []string `yaml:"exclude_columns"`
	// Start is where a source without a checkpoint begins: latest,
	// earliest, FILE:POS or a GTID set.
	Start string `yaml:"start" ferry:"default=latest,enum=latest|earliest,pattern=^ *[^ ]+:[0-9]+ *$|^ *[0-9]+-[0-9]+-[0-9]+|^ *[0-9a-fA-F-]{36}:"`
	// Snapshot is never, or initial: on the first start (no checkpoint)
	// backfill every captured table while streaming from the latest position.
	Snapshot string `yaml:"snapshot" ferry:"default=never,enum=never|initial"`
	// SnapshotChunk is the rows per chunk of backfills.
	SnapshotChunk int `yaml:"snapshot_chunk" ferry:"default=4096"`
	// SnapshotKeys name, per DB.TABLE without a primary key, the columns of
	// a unique NOT NULL key that backfills page by.
	SnapshotKeys map[string][]string `yaml:"snapshot_keys"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `yaml:"connect_timeout" ferry:"default=10s"`
	// StartupTimeout bounds how long Open retries an unreachable server
	// before giving up, so a sidecar may start before its database.
	StartupTimeout time.Duration `yaml:"startup_timeout" ferry:"default=1m"`
	// Heartbeat asks the server for a heartbeat when the binlog is idle.
	Heartbeat time.Duration `yaml:"heartbeat" ferry:"default=5s"`
	// MaxTxBuffer is how many row changes of one transaction are held back
	// until its COMMIT; a bigger transaction is streamed in parts of this
	// size (and, if it is then rolled back, cannot be taken back).
	MaxTxBuffer int `yaml:"max_tx_buffer" ferry:"default=10000"`
	// MaxTxBufferBytes bounds the same buffer by the changes' size in
	// memory (ferry.Change.Size); it also bounds, by size, the decoded
	// changes waiting for the pipeline.
	MaxTxBufferBytes int `yaml:"max_tx_buffer_bytes" ferry:"default=8388608"`
	// BatchSize bounds the changes of one batch handed to the pipeline.
	BatchSize int `yaml:"batch_size" ferry:"default=2048"`
	// ReadCoalesce is how long, while transactions keep arriving, the
	// binlog connection waits after handing over the transactions of its
	// last read before reading again, so those committed meanwhile are
	// decoded, transformed and written together (at a steady rate of small
	// transactions, a fraction of the CPU per change, here and at the
	// sink's destination). A change waits at most this much longer; a lone
	// change after a quiet spell, or a backlog (more than 32 KiB of binlog
	// per read_coalesce), not at all. On Linux the socket's receive
	// low-water mark (`SO_RCVLOWAT`) is raised while it waits, so the
	// transactions arriving meanwhile do not wake Ferry one by one. 0 reads
	// each transaction as it arrives. At most 100ms. The default, 12ms,
	// keeps a steady trickle's p99 from commit to the sink under 20 ms at
	// a quarter to 40 % less CPU per change than 5ms; lower it where
	// milliseconds matter more than CPU.
	ReadCoalesce time.Duration `yaml:"read_coalesce" ferry:"default=12ms"`
	// TLS encrypts (and verifies) the connections to the server.
	TLS TLSConfig `yaml:"tls"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config { return ferry.Defaults[Config]() }

// Connector registers the `type: mysql` source: streaming, its backfills
// and replays (run as another replica, with their own server_id), and the
// positions of `ferry checkpoint`. It records JSON column history in the
// application's SchemaHistory service, when there is one.
var Connector = ferry.SourceSpec[Config]{
	Name: "mysql",
	Build: func(name string, cfg *Config, env ferry.SourceEnv) (ferry.Source, error) {
		s, err := New(name, cfg, env.Log)
		if err != nil {
			return nil, err
		}
		s.SetInstance(env.Instance)
		if h, ok := ferry.Service[SchemaHistory](env); ok {
			s.SetSchemaHistory(h)
		}
		if q, ok := ferry.Service[QuarantineStore](env); ok {
			s.SetQuarantine(q)
		}
		return s, nil
	},
	PositionCodec:     Codec{},
	CheckPositionFunc: CheckPosition,
	Backfill: func(name string, cfg *Config, req ferry.BackfillRequest, serverID uint32, env ferry.SourceEnv) (ferry.Source, error) {
		return ferry.AsSource(NewBackfill(name, cfg, serverID, req, env.Log))
	},
	Replay: func(name string, cfg *Config, r ferry.ReplayRange, serverID uint32, env ferry.SourceEnv) (ferry.Source, error) {
		s, err := NewReplay(name, cfg, serverID, Replay(r), env.Log)
		if err != nil {
			return nil, err
		}
		if h, ok := ferry.Service[SchemaHistory](env); ok {
			s.SetSchemaHistory(h)
		}
		return s, nil
	},
}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); c.Addr != "" && err != nil {
		errs = append(errs, ferry.Invalid("addr", "must be host:port: %v", err))
	}
	errs = append(errs, validatePatterns("include", c.Include, 2)...)
	errs = append(errs, validatePatterns("exclude", c.Exclude, 2)...)
	errs = append(errs, validatePatterns("exclude_columns", c.ExcludeColumns, 3)...)
	if _, err := parseStart(c.Start); err != nil {
		errs = append(errs, ferry.Invalid("start", "%v", err))
	}
	if c.SnapshotChunk < 1 {
		errs = append(errs, ferry.Invalid("snapshot_chunk", "must be at least 1"))
	}
	for table, cols := range c.SnapshotKeys {
		if db, t, ok := strings.Cut(table, "."); !ok || db == "" || t == "" || len(cols) == 0 {
			errs = append(errs, ferry.Invalid("snapshot_keys."+table, "must map DB.TABLE to a list of key columns"))
		}
	}
	for field, d := range map[string]time.Duration{"connect_timeout": c.ConnectTimeout, "startup_timeout": c.StartupTimeout, "heartbeat": c.Heartbeat} {
		if d <= 0 {
			errs = append(errs, ferry.Invalid(field, "must be positive"))
		}
	}
	if c.MaxTxBuffer < 1 {
		errs = append(errs, ferry.Invalid("max_tx_buffer", "must be at least 1"))
	}
	if c.MaxTxBufferBytes < 1<<20 {
		errs = append(errs, ferry.Invalid("max_tx_buffer_bytes", "must be at least 1048576 (1 MiB)"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, ferry.Invalid("batch_size", "must be at least 1"))
	}
	if c.ReadCoalesce < 0 || c.ReadCoalesce > maxReadCoalesce {
		errs = append(errs, ferry.Invalid("read_coalesce", "must be between 0 and %s", maxReadCoalesce))
	}
	errs = append(errs, c.TLS.validate()...)
	return errors.Join(errs...)
}

func validatePatterns(field string, patterns []string, parts int) []error {
	var errs []error
	for i, p := range patterns {
		if _, err := compilePattern(p, parts); err != nil {
			errs = append(errs, ferry.Invalid(field+"["+strconv.Itoa(i)+"]", "%v", err))
		}
	}
	return errs
}
