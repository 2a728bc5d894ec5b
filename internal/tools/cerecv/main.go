// Command cerecv runs the test CloudEvents receiver (internal/testkit/receiver)
// as its own process, so that benchmarks measure Ferry without the receiver
// sharing its process. It prints the address it listens on as the first line
// of its standard output, accepts binary, structured and batch requests on
// any path, answers GET /count with {"count":N}, and stops on SIGINT or
// SIGTERM.
//
//	cerecv -listen 127.0.0.1:0 -discard
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cerecv:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	discard := flag.Bool("discard", false, "only count events instead of keeping them in memory")
	delay := flag.Duration("delay", 0, "delay every answer by this long")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	opts := []receiver.Option{receiver.WithDelay(*delay)}
	if *discard {
		opts = append(opts, receiver.WithDiscard())
	}
	r := receiver.New(opts...)
	if _, err := fmt.Println(ln.Addr().String()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("print address: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err = r.Serve(ctx, ln)
	fmt.Fprintf(os.Stderr, "cerecv: %d events in %d requests over %v\n", r.Count(), r.Attempts(), time.Since(start).Round(time.Millisecond))
	return err
}
