package integration

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/connectors/mysql"
)

// TestMySQLSourceAcceptance runs the shared source suite against the real
// binlog of the shared MariaDB.
func TestMySQLSourceAcceptance(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
	next := 0
	conntest.RunSource(t, conntest.SourceHarness{
		New: func(t *testing.T) ferry.Source {
			cfg := mysql.DefaultConfig()
			cfg.Addr, cfg.User, cfg.ServerID, cfg.Start = shared.Addr, "root", nextServerID(), start
			cfg.Include = []string{name + ".*"}
			s, err := mysql.New("db", cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Produce: func(t *testing.T, n int) {
			for range n {
				next++
				exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, 'v%d')", next, next))
			}
		},
	})
}
