package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listeners are shared: every webhook source of a process that names the
// same listen address is served by one HTTP server, routed by exact path.

type listener struct {
	srv    *http.Server
	ln     net.Listener
	limits Limits
	mu     sync.RWMutex
	paths  map[string]http.Handler
	done   chan struct{}
}

var hub = struct {
	mu        sync.Mutex
	listeners map[string]*listener
}{listeners: map[string]*listener{}}

// register serves h at path on addr, starting the listener if needed. The
// returned function removes the route and, for the last one, shuts the
// server down gracefully (waiting for handlers in flight).
func register(addr, path string, limits Limits, h http.Handler, log *slog.Logger) (func(context.Context) error, error) {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	l := hub.listeners[addr]
	if l == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("webhook listener %s: %w", addr, err)
		}
		l = &listener{ln: ln, limits: limits, paths: map[string]http.Handler{}, done: make(chan struct{})}
		l.srv = &http.Server{Handler: l, ReadHeaderTimeout: limits.HeaderTimeout, ReadTimeout: limits.BodyTimeout,
			MaxHeaderBytes: limits.MaxHeaderBytes, IdleTimeout: 2 * time.Minute}
		limited := newLimitListener(ln, limits, log)
		go func() {
			defer close(l.done)
			if err := l.srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("webhook listener stopped", "addr", addr, "error", err)
			}
		}()
		hub.listeners[addr] = l
		log.Info("webhook listener ready", "addr", ln.Addr().String())
	}
	if err := sameLimits(addr, l.limits, limits); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.paths[path]; taken {
		return nil, fmt.Errorf("webhook path %s on %s is already served by another source", path, addr)
	}
	l.paths[path] = h
	return func(ctx context.Context) error { return unregister(addr, path, ctx) }, nil
}

func unregister(addr, path string, ctx context.Context) error {
	hub.mu.Lock()
	l := hub.listeners[addr]
	if l == nil {
		hub.mu.Unlock()
		return nil
	}
	l.mu.Lock()
	delete(l.paths, path)
	last := len(l.paths) == 0
	l.mu.Unlock()
	if last {
		delete(hub.listeners, addr)
	}
	hub.mu.Unlock()
	if !last {
		return nil
	}
	err := l.srv.Shutdown(ctx)
	<-l.done
	return err
}

// boundAddr reports the address a listener really bound (for :0 in tests).
func boundAddr(addr string) string {
	hub.mu.Lock()
	defer hub.mu.Unlock()
	if l := hub.listeners[addr]; l != nil {
		return l.ln.Addr().String()
	}
	return ""
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.RLock()
	h := l.paths[r.URL.Path]
	l.mu.RUnlock()
	if h == nil {
		http.Error(w, "no webhook at this path", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}
