package webhook

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Limits bound what the clients of one webhook listener may hold, so that
// connections opened and then starved (headers, then a byte a second) cannot
// exhaust the process's file descriptors and memory. Sources sharing a
// listener must agree on them.
type Limits struct {
	// MaxConnections caps the listener's open connections. At the cap, a
	// new connection takes the place of the slowest connection of the
	// address holding the most (unless it comes from that address): a
	// flood competes with itself, a client holding few connections gets in.
	MaxConnections int `yaml:"max_connections" ferry:"default=1024"`
	// MaxConnectionsPerIP caps the open connections of one remote address;
	// beyond it new ones are closed at once.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" ferry:"default=32"`
	// MaxHeaderBytes caps a request's headers (beyond it: 431).
	MaxHeaderBytes int `yaml:"max_header_bytes" ferry:"default=65536"`
	// HeaderTimeout is how long a request's headers may take to arrive.
	HeaderTimeout time.Duration `yaml:"header_timeout" ferry:"default=10s"`
	// BodyTimeout is how long a whole request, headers and body, may take
	// to arrive; a connection still sending then is closed. A connection
	// refused by the caps is held unread (while descriptors allow) and
	// closed after as long, so that a refused flood does not reconnect at
	// once.
	BodyTimeout time.Duration `yaml:"body_timeout" ferry:"default=30s"`
}

func (l Limits) validate() []error {
	var errs []error
	if l.MaxConnections < 1 || l.MaxConnectionsPerIP < 1 || l.MaxConnectionsPerIP > l.MaxConnections {
		errs = append(errs, ferry.Invalid("limits.max_connections", "max_connections and max_connections_per_ip must be positive, per ip at most the total"))
	}
	if l.MaxHeaderBytes < 1024 {
		errs = append(errs, ferry.Invalid("limits.max_header_bytes", "must be at least 1024"))
	}
	if l.HeaderTimeout <= 0 || l.BodyTimeout < l.HeaderTimeout {
		errs = append(errs, ferry.Invalid("limits.body_timeout", "header_timeout must be positive and body_timeout at least header_timeout"))
	}
	return errs
}

// limitListener enforces Limits' connection caps on accepted connections.
type limitListener struct {
	net.Listener
	limits Limits
	log    *slog.Logger

	mu    sync.Mutex
	total int
	perIP map[string]map[*trackedConn]struct{}

	park *parking // where refused connections wait out their deadline

	refused, evicted atomic.Uint64
	lastReport       atomic.Int64 // unix nanos of the last shedding log line
}

func newLimitListener(ln net.Listener, limits Limits, log *slog.Logger) *limitListener {
	return &limitListener{Listener: ln, limits: limits, log: log, perIP: map[string]map[*trackedConn]struct{}{},
		park: newParking(parkBudget(limits.MaxConnections), limits.BodyTimeout)}
}

// Close stops accepting and closes the parked connections.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.park.close()
	return err
}

// Accept returns the next connection within the caps; the others are
// parked (or closed) here and never reach the HTTP server.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.admit(c); tc != nil {
			return tc, nil
		}
		l.report()
	}
}

// admit counts c in, or parks it. At the total cap the address holding
// the most connections gives one up, its slowest; a new connection from
// that address (or one as heavy) is closed instead. A flood therefore
// competes with itself: a client holding few connections always gets in.
func (l *limitListener) admit(c net.Conn) *trackedConn {
	ip := remoteIP(c)
	now := time.Now()
	l.mu.Lock()
	mine := len(l.perIP[ip])
	var victim *trackedConn
	switch {
	case mine >= l.limits.MaxConnectionsPerIP, l.total < l.limits.MaxConnections:
	default:
		if victim = l.victim(mine, now); victim == nil {
			mine = l.limits.MaxConnectionsPerIP // refuse below
		} else {
			l.forget(victim)
		}
	}
	if mine >= l.limits.MaxConnectionsPerIP {
		l.mu.Unlock()
		l.refused.Add(1)
		l.park.park(c)
		return nil
	}
	tc := &trackedConn{Conn: c, l: l, ip: ip, opened: now}
	if l.perIP[ip] == nil {
		l.perIP[ip] = map[*trackedConn]struct{}{}
	}
	l.perIP[ip][tc] = struct{}{}
	l.total++
	l.mu.Unlock()
	if victim != nil {
		l.evicted.Add(1)
		_ = victim.Conn.Close()
		l.report()
	}
	return tc
}

// victim returns the slowest connection (fewest bytes received per
// second) of the address holding the most, if it holds more than mine.
// The scan is over addresses, at most MaxConnections of them, and only at
// the cap.
// Called with mu held.
func (l *limitListener) victim(mine int, now time.Time) *trackedConn {
	var heaviest map[*trackedConn]struct{}
	for _, conns := range l.perIP {
		if len(conns) > len(heaviest) {
			heaviest = conns
		}
	}
	if len(heaviest) <= mine {
		return nil
	}
	var worst *trackedConn
	worstRate := 0.0
	for c := range heaviest {
		rate := float64(c.read.Load()) / max(now.Sub(c.opened).Seconds(), 1e-3)
		if worst == nil || rate < worstRate {
			worst, worstRate = c, rate
		}
	}
	return worst
}

// forget removes c from the counts; called with mu held, once per conn.
func (l *limitListener) forget(c *trackedConn) {
	if c.forgotten {
		return
	}
	c.forgotten = true
	l.total--
	conns := l.perIP[c.ip]
	delete(conns, c)
	if len(conns) == 0 {
		delete(l.perIP, c.ip)
	}
}

// report logs shedding at most every 10 s, with the totals so far.
func (l *limitListener) report() {
	now := time.Now().UnixNano()
	last := l.lastReport.Load()
	if now-last < int64(10*time.Second) || !l.lastReport.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("webhook listener at its connection limits: shedding connections",
		"addr", l.Addr().String(), "refused", l.refused.Load(), "evicted", l.evicted.Load(),
		"max_connections", l.limits.MaxConnections, "max_connections_per_ip", l.limits.MaxConnectionsPerIP)
}

func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// trackedConn counts the bytes a connection received, for eviction.
type trackedConn struct {
	net.Conn
	l         *limitListener
	ip        string
	opened    time.Time
	read      atomic.Int64
	forgotten bool // guarded by l.mu
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// sameLimits reports a listener shared by sources with different limits.
func sameLimits(addr string, have, want Limits) error {
	if have != want {
		return fmt.Errorf("webhook listener %s is shared by sources with different limits: give them the same `limits`", addr)
	}
	return nil
}
