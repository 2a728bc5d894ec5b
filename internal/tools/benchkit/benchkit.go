// Package benchkit holds what the end-to-end benchmark tools share: they
// build the ferry binary once and run it as a separate process, as users do.
package benchkit

import (
	"fmt"
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
