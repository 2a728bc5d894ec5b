// Package admin serves the operator endpoints on the admin listener:
// /healthz (the process is alive), /readyz (the pipeline is running) and
// /status (JSON counters and positions per source and sink).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
)

// Server is a bound admin listener.
type Server struct {
	ln      net.Listener
	stats   *pipeline.Stats
	control Control
	log     *slog.Logger
	srv     *http.Server
}

// Listen binds addr; the admin listener is meant for loopback or a pod
// network, never the internet: besides reading status it starts backfills
// and replays (when control is not nil).
func Listen(addr string, stats *pipeline.Stats, control Control, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener %s: %w", addr, err)
	}
	s := &Server{ln: ln, stats: stats, control: control, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /status", s.status)
	if control != nil {
		s.routeWork(mux)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
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

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.stats.Running() {
		http.Error(w, "not ready: sources and sinks are not all open\n", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

type sourceStatus struct {
	Read         uint64 `json:"changes_read"`
	Dropped      uint64 `json:"changes_dropped"`
	RuleFailures uint64 `json:"rule_failures"`
	Checkpoint   string `json:"checkpoint,omitempty"`
	CheckpointAt string `json:"checkpoint_at,omitempty"`
}

type sinkStatus struct {
	Delivered    uint64  `json:"delivered"`
	Retries      uint64  `json:"retries"`
	DeadLettered uint64  `json:"dead_lettered"`
	Writes       uint64  `json:"writes"`
	AvgWriteMs   float64 `json:"avg_write_ms"`
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Running   bool                     `json:"running"`
		Sources   map[string]sourceStatus  `json:"sources"`
		Sinks     map[string]sinkStatus    `json:"sinks"`
		Backfills []ferry.BackfillProgress `json:"backfills,omitempty"`
		Replays   []ReplayStatus           `json:"replays,omitempty"`
	}{Running: s.stats.Running(), Sources: map[string]sourceStatus{}, Sinks: map[string]sinkStatus{}}
	if s.control != nil {
		out.Backfills, out.Replays = s.control.Backfills(), s.control.Replays()
	}
	for _, name := range s.stats.SourceNames() {
		st := s.stats.Source(name)
		cp, at := st.Checkpoint()
		ss := sourceStatus{Read: st.Read.Load(), Dropped: st.Dropped.Load(), RuleFailures: st.RuleFailures.Load(), Checkpoint: string(cp)}
		if !at.IsZero() {
			ss.CheckpointAt = at.UTC().Format(time.RFC3339Nano)
		}
		out.Sources[name] = ss
	}
	for _, name := range s.stats.SinkNames() {
		st := s.stats.Sink(name)
		ks := sinkStatus{Delivered: st.Delivered.Load(), Retries: st.Retries.Load(), DeadLettered: st.DeadLettered.Load(), Writes: st.Writes.Load()}
		if ks.Writes > 0 {
			ks.AvgWriteMs = float64(st.WriteNanos.Load()) / float64(ks.Writes) / 1e6
		}
		out.Sinks[name] = ks
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
