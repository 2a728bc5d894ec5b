// Command devdb runs a disposable binlog-enabled MariaDB in the foreground
// for the quick start and manual experiments:
//
//	go run ./internal/mariadbtest/cmd/devdb -port 3307 -dir /tmp/ferry-devdb
//
// It reuses an initialized datadir in -dir, prints "ready HOST:PORT" once the
// server answers, and shuts it down on SIGINT/SIGTERM (keeping the data
// unless -rm).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

func main() {
	port := flag.Int("port", 3307, "TCP port on 127.0.0.1")
	dir := flag.String("dir", "/tmp/ferry-devdb", "server directory (datadir, socket, logs)")
	rm := flag.Bool("rm", false, "remove the directory on exit")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := mariadbtest.Start(ctx, mariadbtest.Options{Port: *port, Dir: *dir,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
	fmt.Println("ready", s.Addr)
	<-ctx.Done()
	if *rm {
		err = s.Stop()
	} else {
		err = s.StopKeep()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
}
