// Package admin serves the operator endpoints on the admin listener:
// /healthz (the process is alive), /readyz (every source connected, every
// sink reachable, lag under admin.max_lag), /status (JSON counters,
// positions and states per source and sink), /metrics (Prometheus) and the
// work API (backfills, replays). Who may call which is decided in one
// place, access.go.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// Options configure the admin listener.
type Options struct {
	// Addr is the host:port to bind.
	Addr string
	// Metrics is the process's registry, served on /metrics; its bound
	// view is the pipeline /readyz and /status describe. Required.
	Metrics *telemetry.Metrics
	// Control performs backfills and replays on request; nil leaves those
	// endpoints out.
	Control Control
	// DeadLetters lists and replays dead letters on request; nil leaves
	// those endpoints out.
	DeadLetters DeadLetters
	// Schemas shows and resyncs mysql schema histories; nil leaves those
	// endpoints out.
	Schemas Schemas
	// MaxLag, when positive, makes /readyz fail while a source lags more.
	MaxLag time.Duration
	Log    *slog.Logger
	// Token, when set, is the bearer token every endpoint but /healthz and
	// /readyz (and /metrics with MetricsPublic) requires. Without it the
	// work endpoints answer only on loopback.
	Token         string
	MetricsPublic bool
	// Pprof serves net/http/pprof under /debug/pprof/. It is honoured only
	// with a Token: the access guard then answers 401 to a caller without
	// it, like every endpoint not listed as probe or observe.
	Pprof bool
	// TLS, when set, serves HTTPS; with ClientCAs set, every endpoint but
	// the probes also needs a client certificate those CAs signed.
	TLS *tls.Config
	// Redact, when set, cleans /status of the configuration's secrets
	// (which a source's or sink's last error may quote).
	Redact func(string) string
	// Role, when set, returns the process's ha role: "leader", "standby",
	// or "" without ha. A standby is ready (it is healthy and waiting for
	// the lease; failing readiness would take a sidecar's pod out of
	// service), and /status shows the role.
	Role func() string
}

// Server is a bound admin listener.
type Server struct {
	ln      net.Listener
	metrics *telemetry.Metrics
	control Control
	maxLag  time.Duration
	role    func() string
	redact  func(string) string
	log     *slog.Logger
	srv     *http.Server
}

// Listen binds opts.Addr; the admin listener is meant for loopback or a pod
// network, never the internet: besides reading status it starts backfills
// and replays (when opts.Control is not nil).
func Listen(opts Options) (*Server, error) {
	if opts.Metrics == nil {
		return nil, errors.New("admin listener needs the metrics registry")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", opts.Addr, err)
	}
	if opts.Role == nil {
		opts.Role = func() string { return "" }
	}
	if opts.Redact == nil {
		opts.Redact = func(s string) string { return s }
	}
	clientCerts := false
	if opts.TLS != nil {
		clientCerts = opts.TLS.ClientCAs != nil
		ln = tls.NewListener(ln, opts.TLS)
	}
	s := &Server{ln: ln, metrics: opts.Metrics, control: opts.Control, maxLag: opts.MaxLag, role: opts.Role, redact: opts.Redact, log: opts.Log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /status", s.status)
	mux.Handle("GET /metrics", opts.Metrics.Handler())
	if opts.Control != nil {
		s.routeWork(mux)
	}
	if opts.DeadLetters != nil {
		s.routeDeadLetters(mux, opts.DeadLetters)
	}
	if opts.Schemas != nil {
		s.routeSchemas(mux, opts.Schemas)
	}
	if opts.Pprof && opts.Token != "" {
		routePprof(mux)
	}
	guard := newAccess(opts.Token, opts.MetricsPublic, clientCerts, opts.Log)
	s.srv = &http.Server{Handler: guard.wrap(mux), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	return s, nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	})
	defer stop()
	s.log.Info("admin listener ready", "addr", s.Addr())
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// healthz answers while the process serves HTTP at all: a liveness probe
// must not fail because a database is down, or the restart loop starts.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

// readyz: a standby is ready (it must not take a sidecar's pod out of
// service) unless the pipeline it runs anyway, its webhook sources under
// ha, is not.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if reasons := s.notReady(); len(reasons) > 0 {
		http.Error(w, s.redact("not ready: "+strings.Join(reasons, "; ")), http.StatusServiceUnavailable)
		return
	}
	if s.role() == "standby" {
		_, _ = w.Write([]byte("standby\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// notReady is notReady of the bound view; nothing for a standby that runs
// no pipeline.
func (s *Server) notReady() []string {
	v := s.metrics.View()
	if s.role() == "standby" && v.Stats == nil {
		return nil
	}
	return notReady(v, s.maxLag)
}

// notReady lists what keeps the pipeline from being ready, in a stable
// order; it is empty when every source is connected (and within maxLag)
// and every sink reachable.
func notReady(v telemetry.View, maxLag time.Duration) []string {
	if v.Stats == nil || !v.Stats.Running() {
		return []string{"sources and sinks are not all open"}
	}
	var reasons []string
	for _, name := range slices.Sorted(maps.Keys(v.Sources)) {
		st := telemetry.SourceStatus(v.Sources[name], true)
		if !st.Connected {
			reasons = append(reasons, fmt.Sprintf("source %s %s", name, st.State))
			continue
		}
		if maxLag > 0 && st.Lag > maxLag {
			reasons = append(reasons, fmt.Sprintf("source %s lag %s > %s", name, roundDuration(st.Lag), maxLag))
		}
	}
	now := time.Now()
	for _, name := range v.Stats.SinkNames() {
		st := v.Stats.Sink(name)
		r, h := st.Reachability(), st.Health()
		switch {
		case !r.Reachable:
			reasons = append(reasons, fmt.Sprintf("sink %s unreachable: %s", name, r.LastError))
		case h.FailingKeys > 0 && now.Sub(h.FailingSince) >= failingFor:
			reasons = append(reasons, fmt.Sprintf("sink %s failing for %s: %d keys held back (%d events): %s",
				name, roundDuration(now.Sub(h.FailingSince)), h.FailingKeys, h.Held, r.LastError))
		}
		if !h.DeadLetterAt.IsZero() && now.Sub(h.DeadLetterAt) < deadLetterWindow {
			reasons = append(reasons, fmt.Sprintf("sink %s dead-lettered events %s ago: %s",
				name, roundDuration(now.Sub(h.DeadLetterAt)), h.DeadLetterError))
		}
	}
	return reasons
}

// A sink is not ready while some key has kept failing for failingFor, and
// for deadLetterWindow after it dead-lettered an event: both need an
// operator's look although the rest of the stream flows.
const (
	failingFor       = 30 * time.Second
	deadLetterWindow = time.Minute
)

// roundDuration keeps lag readable: whole seconds, or milliseconds below one.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
