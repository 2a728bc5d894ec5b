//go:build !linux

package mysql

import "net"

// receiveLowat: the read_coalesce pause keeps the socket's default
// low-water mark where the kernel's handling of SO_RCVLOWAT with the
// runtime's poller was not measured.
func receiveLowat(net.Conn) func(bytes int) error { return nil }
