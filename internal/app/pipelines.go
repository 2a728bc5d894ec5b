package app

import (
	"maps"
	"sync"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/config"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// kind is which of a configuration's sources one pipeline runs.
//
// Without ha one pipeline runs them all. With ha, binlog sources run only
// on the leader (kindLeased), fenced by the lease, while webhook sources
// (any ferry.EveryReplica) run on every replica, leader or standby (kindLocal): a webhook request
// is journaled in the state.dir of the replica that accepted it and
// delivered by that replica, so it needs no lease, and a standby that
// refused requests would only turn a Service's retries into errors.
type kind uint8

const (
	kindAll kind = iota
	kindLeased
	kindLocal
)

func (k kind) String() string {
	return [...]string{"all", "leader", "local"}[k]
}

// runs reports whether a pipeline of kind k runs src.
func (k kind) runs(src *config.Source) bool {
	switch k {
	case kindLeased:
		return !everyReplica(src)
	case kindLocal:
		return everyReplica(src)
	}
	return true
}

// everyReplica reports whether src runs on every replica (see
// ferry.EveryReplica).
func everyReplica(src *config.Source) bool {
	r, ok := src.Spec.(ferry.EveryReplica)
	return ok && r.RunsOnEveryReplica()
}

func hasSources(cfg *config.Config, k kind) bool {
	for _, name := range cfg.SourceNames() {
		if k.runs(cfg.Sources[name]) {
			return true
		}
	}
	return false
}

// views binds what the admin endpoints and metrics show: the running
// pipelines' sources and counters, one pipeline or two (leader and local).
type views struct {
	metrics *telemetry.Metrics
	// stats, when set, is shared by the two pipelines of an ha replica
	// with webhook sources, so a sink both deliver to is counted once.
	stats *pipeline.Stats

	mu    sync.Mutex
	parts map[kind]*running
}

func (v *views) bind(r *running) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.parts[r.kind] = r
	v.publishLocked()
}

func (v *views) unbind(k kind) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.parts, k)
	v.publishLocked()
}

func (v *views) publishLocked() {
	if len(v.parts) == 0 {
		v.metrics.Bind(telemetry.View{})
		return
	}
	view := telemetry.View{Stats: v.stats, Sources: map[string]ferry.Source{}}
	for _, r := range v.parts {
		if view.Stats == nil {
			view.Stats = r.rt.Stats()
		}
		maps.Copy(view.Sources, r.a.sources)
	}
	v.metrics.Bind(view)
}
