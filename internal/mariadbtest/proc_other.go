//go:build !linux && !windows && !plan9

package mariadbtest

import (
	"os/exec"
	"syscall"
)

// startProcess starts cmd in its own process group. Outside Linux there is no
// parent-death signal: a server outlives a test process that crashes.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
