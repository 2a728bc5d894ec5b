// Package mariadbtest starts disposable MariaDB servers for tests,
// benchmarks and the quick start.
//
// Every server is throwaway: Start runs mariadb-install-db into a fresh
// datadir under a new temporary directory (Options.BaseDir, default
// os.TempDir()) and starts mariadbd from Debian's mariadb-server package with
// --no-defaults, so nothing in /etc/mysql applies. The server listens on a
// private loopback port (127.0.0.1; a free port picked at random unless
// Options.Port is set, with another try on a fresh port when the picked one
// was taken meanwhile) and on a unix socket. Stop shuts it down and removes
// its directory; Kill (SIGKILL, as a crash would) and StopKeep keep the data
// for Restart, which starts it again on the same port and datadir.
//
// Access is root with an empty password over TCP: Server.DSN gives a
// github.com/go-sql-driver/mysql DSN (multiStatements=true, parseTime=false),
// Server.DB an open pool closed with the test, Server.Exec runs statements,
// and Server.CreateUser makes a less privileged account for privilege tests.
//
// Unless Options.NoBinlog is set, the server runs with what Ferry requires of
// a source: log_bin (files mysql-bin.NNNNNN in the datadir),
// binlog_format=ROW, binlog_row_image=FULL, binlog_row_metadata=FULL and
// server_id (Options.ServerID, default 1). The server character set is
// utf8mb4. To stay small and fast it uses a 64 MB buffer pool, a 48 MB redo
// log, innodb_flush_log_at_trx_commit=2 and no doublewrite buffer: committed
// data survives a kill of mariadbd (Kill), not a crash of the machine.
// Options.ExtraArgs come last on the command line and so override any of
// these.
//
// A fresh datadir is a copy of a template that the first Start on the
// machine makes with mariadb-install-db in os.TempDir()
// (ferry-mariadbtest-template-<key>, about 65 MB, keyed by the MariaDB
// binaries): a copy takes tens of milliseconds where mariadb-install-db takes
// a second or more of CPU. MARIADBTEST_NO_TEMPLATE=1 runs mariadb-install-db
// for every server instead.
//
// mariadbd runs in its own process group and, on Linux, gets SIGKILL when
// the process that started it dies (PR_SET_PDEATHSIG), so a crashed or
// timed-out test leaves no server behind.
//
// Tests must never rely on the machine's own MariaDB on port 3306: it has no
// binary log, and its data is not the tests' to change.
package mariadbtest
