// Package benchkit holds what the end-to-end benchmark tools share: they
// build the ferry binary once and run it as a separate process, as users do.
package benchkit

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
)

// BuildFerry builds ./cmd/ferry (run from the module root) into dir and
// returns the binary's path.
func BuildFerry(dir string) (string, error) {
	bin := filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/ferry").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ferry: %w: %s", err, out)
	}
	return bin, nil
}

// FreeAddrs returns n loopback addresses free at the time of the call, for
// the listeners of the process under test.
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer ln.Close() // held until all are chosen, so they differ
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
