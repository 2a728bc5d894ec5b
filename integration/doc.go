// Package integration runs Ferry end to end: the real ferry binary as its
// own process, against throwaway binlog-enabled MariaDB servers
// (internal/mariadbtest) and real HTTP receivers. Nothing here is mocked, and
// nothing skips: a server that cannot start fails the test with the reason.
package integration
