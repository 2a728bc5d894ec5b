//go:build !unix

package state

import (
	"os"
	"time"
)

// lockShared is a no-op where flock does not exist; bbolt's own lock still
// keeps two writers apart.
func lockShared(*os.File, time.Duration) error { return nil }
