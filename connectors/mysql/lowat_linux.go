package mysql

import (
	"net"
	"syscall"
)

// receiveLowat returns a function that sets conn's SO_RCVLOWAT, or nil when
// conn is not a socket it can be set on. Linux (since 4.18) neither wakes
// an epoll waiter nor reports the socket readable while fewer bytes than
// that are queued; a read still returns what is there.
func receiveLowat(conn net.Conn) func(bytes int) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(bytes int) error {
		var serr error
		err := raw.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, bytes)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
