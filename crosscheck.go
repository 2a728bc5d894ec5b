package ferry

import (
	"crypto/tls"
	"time"
)

// This file holds what a connector configuration tells the application
// about itself for the checks that span several blocks of a configuration:
// the application asks through these interfaces and never looks inside a
// connector's configuration type.

// Claim is one resource a source's configuration uses exclusively.
type Claim struct {
	// Resource identifies what is claimed; two sources claiming equal
	// resources is a configuration error. Prefix it with the connector
	// type (e.g. "webhook route 0.0.0.0:8080/orders") so that types never
	// collide by accident.
	Resource string
	// Field is the key of the source's block the error is reported at,
	// relative to the block (e.g. "path").
	Field string
	// Use completes "source NAME already ..." in that error, e.g.
	// "serves /orders on 0.0.0.0:8080".
	Use string
}

// Claimer is a source configuration that claims resources no other source
// may claim too, such as a path on a shared webhook listener.
//
// Lifecycle: Claims is called once the configuration is decoded and
// validated (after Validate succeeded), before any source is built; it
// must not modify the configuration.
type Claimer interface {
	Claims() []Claim
}

// ServerLogin is how to reach and log in to a database server.
type ServerLogin struct {
	Addr     string // host:port
	User     string
	Password Secret
	// TLS is the client's TLS configuration; nil connects in plain text.
	TLS *tls.Config
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration
	// StartupTimeout is how long an unreachable server is waited for at
	// start (a sidecar may start before its database).
	StartupTimeout time.Duration
}

// MySQLServer is a source configuration whose server speaks the MySQL
// protocol (MySQL, MariaDB): Ferry may keep its checkpoint table and its HA
// lock there (state.checkpoints.source, ha.source name such a source).
//
// Lifecycle: every method is called after Validate succeeded and before
// the source is built. ServerAddr and Login do not modify the
// configuration; ExcludeTable does, once per table, before any other
// method's result is used to build the source.
type MySQLServer interface {
	// ServerAddr is the server's host:port as configured.
	ServerAddr() string
	// Login returns the settings to connect with, TLS included (building
	// the TLS configuration reads files, hence the error).
	Login() (ServerLogin, error)
	// ExcludeTable keeps the source from capturing the changes of
	// db.table: Ferry's own checkpoint writes, when the checkpoint table is
	// on this source's server.
	ExcludeTable(db, table string)
}

// HeaderScrubber is a source configuration whose requests carry secret
// headers (credentials, signatures) that are removed before a change is
// kept, so no rule can read them: a rule reading one is refused.
//
// Lifecycle: SecretHeaders is called after Validate succeeded, before any
// source is built; it must not modify the configuration.
type HeaderScrubber interface {
	// SecretHeaders names the removed headers (case-insensitive).
	SecretHeaders() []string
}

// EveryReplica is a source configuration whose source runs on every HA
// replica, leader or standby, instead of only on the leader: it keeps what
// it receives in the accepting replica's own state (a webhook journals each
// request in that replica's state.dir) and delivers it from there, so it
// needs no lease. Sources that read a stream only one replica may read
// (a binlog) do not implement it.
//
// Lifecycle: RunsOnEveryReplica is called after Validate succeeded, any
// number of times; it must not modify the configuration.
type EveryReplica interface {
	RunsOnEveryReplica() bool
}

// ExactlyOnceSink is a sink configuration that may commit its events
// together with the source position (a ferry.TransactionalSink). Such a
// sink is the checkpoint of the sources feeding it, so the application
// refuses a configuration in which one of them also feeds another sink (that
// sink would get the changes again after a crash, or lose them, depending on
// which checkpoint wins), more than one source feeds it, or the source runs
// on every HA replica (each replica would resume from the others' position
// and fence them with the one transactional identity).
//
// Lifecycle: ExactlyOnce is called after Validate succeeded, any number of
// times; it must not modify the configuration.
type ExactlyOnceSink interface {
	ExactlyOnce() bool
}
