// Command devdb runs a binlog-enabled MariaDB in the foreground, with the
// same launcher the tests use, for the quick start, benchmarks and manual
// experiments:
//
//	go run ./internal/mariadbtest/cmd/devdb -port 3307 -dir /tmp/ferry-devdb [-- --extra-mariadbd-arg ...]
//
// It reuses an initialized datadir in -dir (so re-running is fast and keeps
// the data), prints "ready 127.0.0.1:PORT" on stdout once the server
// answers, logs to stderr, and on SIGINT or SIGTERM shuts the server down
// gracefully, keeping the data unless -rm is given. Connect as root with an
// empty password over TCP. If devdb itself is killed with SIGKILL, the
// server is killed with it (and recovers its data on the next run).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("devdb", flag.ContinueOnError)
	port := fs.Int("port", 3307, "TCP port on 127.0.0.1 (0 picks a free one)")
	dir := fs.String("dir", "/tmp/ferry-devdb", "server directory: datadir, socket, error.log (reused when present)")
	rm := fs.Bool("rm", false, "remove -dir when the server stops")
	serverID := fs.Uint("server-id", 1, "server_id")
	noBinlog := fs.Bool("no-binlog", false, "start without binary logging")
	timeout := fs.Duration("timeout", mariadbtest.DefaultStartTimeout, "how long to wait for the server to answer")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: devdb [flags] [-- extra mariadbd args]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "devdb: "+f+"\n", a...) }

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	s, err := mariadbtest.Start(ctx, mariadbtest.Options{
		Port: *port, Dir: *dir, ServerID: uint32(*serverID), NoBinlog: *noBinlog,
		ExtraArgs: fs.Args(), StartTimeout: *timeout, Logf: logf,
	})
	if err != nil {
		logf("%v", err)
		return 1
	}
	logf("MariaDB up in %v: datadir %s, socket %s, error log %s; Ctrl-C stops it",
		time.Since(started).Round(time.Millisecond), s.DataDir, s.Socket, s.ErrorLog)
	fmt.Println("ready", s.Addr)

	<-ctx.Done()
	stop() // a second Ctrl-C kills devdb (and with it the server) at once
	logf("shutting down")
	if *rm {
		err = s.Stop()
	} else {
		err = s.StopKeep()
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}
