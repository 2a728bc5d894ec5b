package mysql

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if server = <-accepted; server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// socketState reports the bytes queued on conn's socket, whether poll
// calls it readable, and its SO_RCVLOWAT.
func socketState(t *testing.T, conn net.Conn) (queued int, readable bool, lowat int) {
	t.Helper()
	raw, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if queued, serr = unix.IoctlGetInt(int(fd), unix.SIOCINQ); serr != nil {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, serr = unix.Poll(fds, 0); serr != nil {
			return
		}
		readable = fds[0].Revents&unix.POLLIN != 0
		lowat, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	})
	if err = errors.Join(err, serr); err != nil {
		t.Fatal(err)
	}
	return queued, readable, lowat
}

// During a read_coalesce pause, bytes the server sends do not make the
// socket readable (no wake-up of the runtime's poller for a goroutine that
// is not waiting); after it, they are read at once, and a read of the
// emptied socket is woken by a single byte again.
func TestReadCoalescePauseKeepsTheSocketQuiet(t *testing.T) {
	st, _, c, _, _ := deferringFeed(t, 20*time.Millisecond)
	client, server := tcpPair(t)
	c.Conn, c.lowat = client, receiveLowat(client)
	if c.lowat == nil {
		t.Fatal("no SO_RCVLOWAT setter for a TCP connection")
	}
	msg := make([]byte, 100)
	var during struct {
		queued, lowat int
		readable      bool
	}
	c.pause = func(time.Duration) {
		if _, err := server.Write(msg); err != nil {
			t.Error(err)
			return
		}
		for deadline := time.Now().Add(5 * time.Second); during.queued < len(msg) && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			during.queued, during.readable, during.lowat = socketState(t, client)
		}
	}
	buf := make([]byte, 4096)
	server.Write([]byte{1}) //nolint:errcheck // checked by the read
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := st.emit(context.Background(), txBatch(0)); err != nil {
		t.Fatal(err)
	}
	if err := client.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf) // hands the transaction over, pauses, reads
	if err != nil || n != len(msg) {
		t.Fatalf("read after the pause: %d bytes, %v; want %d", n, err, len(msg))
	}
	if during.queued != len(msg) || during.readable || during.lowat != quietLowat {
		t.Fatalf("during the pause: %d bytes queued, readable %v, SO_RCVLOWAT %d; want %d, false, %d",
			during.queued, during.readable, during.lowat, len(msg), quietLowat)
	}
	if _, _, lowat := socketState(t, client); lowat != 1 {
		t.Fatalf("SO_RCVLOWAT %d after the pause, want 1", lowat)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		server.Write([]byte{2}) //nolint:errcheck // checked by the read
	}()
	if n, err := c.Read(buf); err != nil || n != 1 { // no hand-over: no pause
		t.Fatalf("a lone byte on the emptied socket: %d bytes, %v", n, err)
	}
}

// A socket that refuses SO_RCVLOWAT is paused as before, and not asked
// again; one that cannot have it restored ends the read with an error
// rather than leave the next read waiting for quietLowat bytes.
func TestReadCoalescePauseWithoutLowat(t *testing.T) {
	_, _, c, _, pauses := deferringFeed(t, 20*time.Millisecond)
	calls := 0
	c.lowat = func(int) error { calls++; return syscall.ENOPROTOOPT }
	if err := c.pauseQuietly(time.Millisecond); err != nil || c.lowat != nil || calls != 1 || len(*pauses) != 1 {
		t.Fatalf("refused: err %v, lowat kept %v, %d calls, pauses %v", err, c.lowat != nil, calls, *pauses)
	}
	c.lowat = func(n int) error {
		if n == 1 {
			return syscall.EBADF
		}
		return nil
	}
	if err := c.pauseQuietly(time.Millisecond); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("restore failed: err %v, want EBADF", err)
	}
}
