//go:build unix

package webhook

import "syscall"

// reservedDescriptors are left to everything else the process opens: the
// admin listener, the state store, sinks, database connections.
const reservedDescriptors = 1024

// parkBudget is how many refused connections may be parked: the
// descriptors the process may open beyond the served connections and the
// reserve.
func parkBudget(maxConnections int) int {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur > 1<<30 {
		return 0
	}
	return max(0, int(l.Cur)-maxConnections-reservedDescriptors)
}
