// Package telemetry holds Ferry's Prometheus metrics: one registry per
// process, whose collectors read the pipeline's own counters and the
// sources' statuses when scraped, so nothing is counted twice.
package telemetry

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
)

// View is the running pipeline the collectors read at scrape time.
type View struct {
	Stats *pipeline.Stats
	// Sources are the configured sources by name; those implementing
	// ferry.StatusReporter give connection, lag and position.
	Sources map[string]ferry.Source
}

// Metrics is a process's registry with Ferry's collectors. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	view   atomic.Pointer[View]
	leader *prometheus.GaugeVec
}

// New returns a registry holding Ferry's metrics, the Go runtime's and the
// process's. Until Bind is called, only those and ferry_build_info are
// exported.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.leader = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_ha_leader",
		Help: "1 while this process holds the source's leadership lease, 0 while it stands by."}, []string{"source"})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_build_info",
		Help: "Always 1; the version label names the running build."}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	m.reg.MustRegister(build, m.leader, &collector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Bind makes the collectors read v; a reloaded pipeline binds its own view
// (its counters start again from zero, which Prometheus treats as a reset).
func (m *Metrics) Bind(v View) { m.view.Store(&v) }

// View returns the bound view; the zero View before Bind.
func (m *Metrics) View() View {
	if v := m.view.Load(); v != nil {
		return *v
	}
	return View{}
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// SetLeader sets ferry_ha_leader for source; only processes configured for
// high availability call it, so the metric is absent otherwise.
func (m *Metrics) SetLeader(source string, leader bool) {
	v := 0.0
	if leader {
		v = 1
	}
	m.leader.WithLabelValues(source).Set(v)
}

// SourceStatus returns src's status when it reports one; otherwise it is
// derived from whether the pipeline runs.
func SourceStatus(src ferry.Source, running bool) ferry.SourceStatus {
	if r, ok := src.(ferry.StatusReporter); ok {
		return r.Status()
	}
	if running {
		return ferry.SourceStatus{State: ferry.StateStreaming, Connected: true}
	}
	return ferry.SourceStatus{State: ferry.StateStopped}
}
