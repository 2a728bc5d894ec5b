// Command cerecv runs the test CloudEvents receiver as its own process, so
// benchmarks measure Ferry without the receiver sharing its process. It
// prints the bound address on its first line of output.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	discard := flag.Bool("discard", true, "count events without keeping them")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cerecv:", err)
		os.Exit(1)
	}
	r := receiver.New()
	r.SetDiscard(*discard)
	fmt.Println(ln.Addr().String())
	if err := http.Serve(ln, r); err != nil {
		fmt.Fprintln(os.Stderr, "cerecv:", err)
		os.Exit(1)
	}
}
