package mariadbtest

import (
	"context"
	"database/sql"
	"testing"
)

// StartT starts a server for a test or benchmark and stops it (removing its
// data) when the test ends. When the server cannot start, the test fails with
// the reason, never skips: a missing MariaDB is a broken test machine.
// Progress goes to t.Logf unless opts.Logf is set.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start a throwaway MariaDB: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop throwaway MariaDB: %v", err)
		}
	})
	return s
}

// DB opens and pings a pool for root on database db ("" for none), closed
// when the test ends.
func (s *Server) DB(t testing.TB, db string) *sql.DB {
	t.Helper()
	pool, err := sql.Open("mysql", s.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	if err := pool.Ping(); err != nil {
		t.Fatalf("connect to MariaDB at %s as root (db %q): %v", s.Addr, db, err)
	}
	return pool
}
