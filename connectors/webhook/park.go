package webhook

import (
	"net"
	"sync"
	"time"
)

// parking holds connections the limits refused, open but unread, instead
// of closing them: a closed slow client reconnects at once, and a flood
// that reconnects faster than the listener accepts keeps the kernel's
// accept queue full, where a legitimate client's connection waits (or is
// dropped and retried seconds later). A parked connection costs a file
// descriptor and kernel buffers, no goroutine and no memory of ours; the
// park is bounded by the descriptors left over (parkBudget), its oldest
// connection closed to make room, and each is closed after the request
// deadline (body_timeout) it would have had anyway.
type parking struct {
	max     int
	timeout time.Duration

	mu    sync.Mutex
	conns []parkedConn // oldest first
	stop  chan struct{}
	done  chan struct{}
}

type parkedConn struct {
	c  net.Conn
	at time.Time
}

func newParking(max int, timeout time.Duration) *parking {
	p := &parking{max: max, timeout: timeout, stop: make(chan struct{}), done: make(chan struct{})}
	go p.expire()
	return p
}

// park takes c over; it closes c at once when the park holds nothing.
func (p *parking) park(c net.Conn) {
	if p.max <= 0 {
		_ = c.Close()
		return
	}
	var oldest net.Conn
	p.mu.Lock()
	if len(p.conns) >= p.max {
		oldest = p.conns[0].c
		p.conns = p.conns[1:]
	}
	p.conns = append(p.conns, parkedConn{c, time.Now()})
	p.mu.Unlock()
	if oldest != nil {
		_ = oldest.Close()
	}
}

// expire closes connections parked longer than the timeout, every second.
func (p *parking) expire() {
	defer close(p.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			p.closeWhere(func(parkedConn) bool { return true })
			return
		case now := <-t.C:
			p.closeWhere(func(pc parkedConn) bool { return now.Sub(pc.at) >= p.timeout })
		}
	}
}

// closeWhere closes the oldest connections while old says so.
func (p *parking) closeWhere(old func(parkedConn) bool) {
	p.mu.Lock()
	n := 0
	for n < len(p.conns) && old(p.conns[n]) {
		n++
	}
	expired := p.conns[:n:n]
	p.conns = p.conns[n:]
	p.mu.Unlock()
	for _, pc := range expired {
		_ = pc.c.Close()
	}
}

// close closes every parked connection and stops the expiry.
func (p *parking) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}
