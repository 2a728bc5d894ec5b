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
	Addr     string       `yaml:"addr"`
	User     string       `yaml:"user"`
	Password ferry.Secret `yaml:"password"`
	// ServerID identifies Ferry to the server as a replica; it must differ
	// from the server's and every other replica's server_id.
	ServerID uint32 `yaml:"server_id"`
	// Flavor is auto (detected from VERSION()), mysql or mariadb.
	Flavor string `yaml:"flavor"`
	// Include and Exclude are DB.TABLE patterns; * and ? are wildcards
	// within one name. An empty Include means every non-system table.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// ExcludeColumns are DB.TABLE.COLUMN patterns removed from every image.
	ExcludeColumns []string `yaml:"exclude_columns"`
	// Start is where a source without a checkpoint begins: latest,
	// earliest, FILE:POS or a GTID set.
	Start string `yaml:"start"`
	// Snapshot is never, or initial: on the first start (no checkpoint)
	// backfill every captured table while streaming from the latest position.
	Snapshot string `yaml:"snapshot"`
	// SnapshotChunk is the rows per chunk of backfills.
	SnapshotChunk int `yaml:"snapshot_chunk"`
	// SnapshotKeys name, per DB.TABLE without a primary key, the columns of
	// a unique NOT NULL key that backfills page by.
	SnapshotKeys map[string][]string `yaml:"snapshot_keys"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// StartupTimeout bounds how long Open retries an unreachable server
	// before giving up, so a sidecar may start before its database.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// Heartbeat asks the server for a heartbeat when the binlog is idle.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// MaxTxBuffer is how many row changes of one transaction are held back
	// until its COMMIT; a bigger transaction is streamed in parts of this
	// size (and, if it is then rolled back, cannot be taken back).
	MaxTxBuffer int `yaml:"max_tx_buffer"`
	// MaxTxBufferBytes bounds the same buffer by the changes' size in
	// memory (ferry.Change.Size); it also bounds, by size, the decoded
	// changes waiting for the pipeline.
	MaxTxBufferBytes int `yaml:"max_tx_buffer_bytes"`
	// BatchSize bounds the changes of one batch handed to the pipeline.
	BatchSize int `yaml:"batch_size"`
	// TLS encrypts (and verifies) the connections to the server.
	TLS TLSConfig `yaml:"tls"`
}

// DefaultConfig returns the defaults of every optional key.
func DefaultConfig() *Config {
	return &Config{
		Flavor:           "auto",
		Start:            "latest",
		Snapshot:         "never",
		SnapshotChunk:    4096,
		ConnectTimeout:   10 * time.Second,
		StartupTimeout:   time.Minute,
		Heartbeat:        5 * time.Second,
		MaxTxBuffer:      10000,
		MaxTxBufferBytes: 8 << 20,
		BatchSize:        2048,
	}
}

// Validate reports every invalid key.
func (c *Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, ferry.Invalid("addr", "is required (host:port of the MySQL or MariaDB server)"))
	} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, ferry.Invalid("addr", "must be host:port: %v", err))
	}
	if c.User == "" {
		errs = append(errs, ferry.Invalid("user", "is required"))
	}
	if c.ServerID == 0 {
		errs = append(errs, ferry.Invalid("server_id", "is required: a number from 1 to 4294967295, unique among the server's replicas"))
	}
	switch c.Flavor {
	case "auto", "mysql", "mariadb":
	default:
		errs = append(errs, ferry.Invalid("flavor", "must be auto, mysql or mariadb, not %q", c.Flavor))
	}
	errs = append(errs, validatePatterns("include", c.Include, 2)...)
	errs = append(errs, validatePatterns("exclude", c.Exclude, 2)...)
	errs = append(errs, validatePatterns("exclude_columns", c.ExcludeColumns, 3)...)
	if _, err := parseStart(c.Start); err != nil {
		errs = append(errs, ferry.Invalid("start", "%v", err))
	}
	if c.Snapshot != "never" && c.Snapshot != "initial" {
		errs = append(errs, ferry.Invalid("snapshot", "must be never or initial, not %q", c.Snapshot))
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
