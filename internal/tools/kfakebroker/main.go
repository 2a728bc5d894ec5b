// Command kfakebroker runs franz-go's kfake Kafka broker in a process of
// its own, so a benchmark's broker does not share the CPU accounting (or
// the garbage collector) of the process it measures. It prints the
// bootstrap address on the first line of stdout and serves until SIGINT or
// SIGTERM.
//
//	go run ./internal/tools/kfakebroker -partitions 6
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	partitions := flag.Int("partitions", 6, "partitions of auto-created topics")
	port := flag.Int("port", 0, "listen port on 127.0.0.1 (0 picks a free one)")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(*partitions), kfake.AllowAutoTopicCreation()}
	if *port != 0 {
		opts = append(opts, kfake.Ports(*port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Println(strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
