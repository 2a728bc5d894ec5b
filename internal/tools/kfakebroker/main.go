// Command kfakebroker runs franz-go's kfake Kafka broker in a process of
// its own, so a benchmark's broker does not share the CPU accounting (or
// the garbage collector) of the process it measures. It prints the
// bootstrap address on the first line of stdout and serves until SIGINT or
// SIGTERM.
//
//	go run ./internal/tools/kfakebroker -partitions 6 [-cpuprofile /tmp/kfake.pprof]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	partitions := flag.Int("partitions", 6, "partitions of auto-created topics")
	port := flag.Int("port", 0, "listen port on 127.0.0.1 (0 picks a free one)")
	profile := flag.String("cpuprofile", os.Getenv("KFAKE_CPUPROFILE"), "write a CPU profile of the broker to this file until it stops (default $KFAKE_CPUPROFILE)")
	mem := flag.Bool("mem", false, "keep the log in memory (kfake's default), whose growing buffers are copied on every doubling, instead of in files under a temporary directory, in the page cache as a real broker keeps it")
	flag.Parse()
	if *profile != "" {
		stop, err := startProfile(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfakebroker:", err)
			os.Exit(1)
		}
		defer stop()
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(*partitions), kfake.AllowAutoTopicCreation()}
	if !*mem {
		dir, err := os.MkdirTemp("", "kfakebroker-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfakebroker:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		opts = append(opts, kfake.DataDir(dir))
	}
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

// startProfile profiles the broker's CPU (its share of a benchmark's cost:
// it runs on the same cores as the process measured).
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
