package mariadbtest

import (
	"context"
	"database/sql"
	"testing"
)

// StartT starts a server for a test and stops it when the test ends. It
// fails the test with the reason when the server cannot start: integration
// tests never skip silently.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start throwaway MariaDB: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// DB opens a pool to db as root, closed when the test ends.
func (s *Server) DB(t testing.TB, db string) *sql.DB {
	t.Helper()
	pool, err := sql.Open("mysql", s.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(); err != nil {
		t.Fatalf("connect to %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}
