//go:build unix

package state

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockShared takes a shared flock on f, the lock bbolt's writer holds
// exclusively, so that checkFile never reads a file another Ferry is
// writing. It gives up with ErrLocked after timeout; closing f releases it.
func lockShared(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return ErrLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}
