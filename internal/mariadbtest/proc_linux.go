//go:build linux

package mariadbtest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// Linux sends the PR_SET_PDEATHSIG signal when the *thread* that forked the
// child exits, not when the process does. The Go runtime can end an OS thread
// (a goroutine that exits while locked to its thread takes the thread along),
// so children are forked from one goroutine locked to its thread for the
// life of the process: they die with the process, never earlier.
var (
	spawnOnce sync.Once
	spawnReqs chan func()
)

// startProcess starts cmd in its own process group, set to get SIGKILL when
// this process dies.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	spawnOnce.Do(func() {
		spawnReqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for f := range spawnReqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawnReqs <- func() { errc <- cmd.Start() }
	return <-errc
}
