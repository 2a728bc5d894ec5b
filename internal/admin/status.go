package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/telemetry"
)

// statusDoc is the /status document. Fields are only ever added: scripts
// and tests read it.
type statusDoc struct {
	// Role is the ha role (leader or standby); absent without ha.
	Role      string                   `json:"role,omitempty"`
	Running   bool                     `json:"running"`
	Ready     bool                     `json:"ready"`
	NotReady  []string                 `json:"not_ready,omitempty"`
	InFlight  int64                    `json:"in_flight"`
	Sources   map[string]sourceStatus  `json:"sources"`
	Sinks     map[string]sinkStatus    `json:"sinks"`
	Backfills []ferry.BackfillProgress `json:"backfills,omitempty"`
	Replays   []ReplayStatus           `json:"replays,omitempty"`
}

type sourceStatus struct {
	Read         uint64 `json:"changes_read"`
	Dropped      uint64 `json:"changes_dropped"`
	RuleFailures uint64 `json:"rule_failures"`
	Checkpoint   string `json:"checkpoint,omitempty"`
	CheckpointAt string `json:"checkpoint_at,omitempty"`
	// events_in are the changes read; events_out those released
	// (delivered to every sink, dead-lettered or dropped).
	EventsIn  uint64 `json:"events_in"`
	EventsOut uint64 `json:"events_out"`
	InFlight  int64  `json:"in_flight"`
	// The source's own report (absent for the keys of backfills and
	// replays run beside a source).
	State      ferry.SourceState `json:"state,omitempty"`
	Connected  *bool             `json:"connected,omitempty"`
	LagSeconds *float64          `json:"lag_seconds,omitempty"`
	Position   string            `json:"position,omitempty"`
	Requests   map[string]uint64 `json:"requests,omitempty"`
	Buffered   *int64            `json:"buffered,omitempty"`
	// Partitions are a Kafka source's assigned partitions.
	Partitions []partitionStatus `json:"partitions,omitempty"`
}

type partitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Read      int64  `json:"read"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
}

type sinkStatus struct {
	Delivered    uint64  `json:"delivered"`
	Retries      uint64  `json:"retries"`
	DeadLettered uint64  `json:"dead_lettered"`
	Writes       uint64  `json:"writes"`
	AvgWriteMs   float64 `json:"avg_write_ms"`
	// Failures are Writes that failed, wholly or in part.
	Failures    uint64 `json:"failures"`
	Buffered    int64  `json:"buffered"`
	Reachable   bool   `json:"reachable"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"`
	// FailingKeys are ordering keys held back behind a failing event,
	// Held the events waiting behind them, FailingSince when the oldest
	// started failing.
	FailingKeys  int    `json:"failing_keys"`
	Held         int    `json:"held"`
	FailingSince string `json:"failing_since,omitempty"`
	// LastDeadLetterAt and LastDeadLetterError describe the last event
	// the sink dead-lettered.
	LastDeadLetterAt    string        `json:"last_dead_letter_at,omitempty"`
	LastDeadLetterError string        `json:"last_dead_letter_error,omitempty"`
	Latency             latencyStatus `json:"latency"`
}

// latencyStatus summarizes ferry_sink_delivery_latency_seconds; quantiles
// are estimated from its buckets.
type latencyStatus struct {
	Count uint64  `json:"count"`
	AvgMs float64 `json:"avg_ms"`
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	v := s.metrics.View()
	out := statusDoc{Sources: map[string]sourceStatus{}, Sinks: map[string]sinkStatus{}}
	out.Role = s.role()
	out.NotReady = s.notReady()
	out.Ready = len(out.NotReady) == 0
	if s.control != nil {
		out.Backfills, out.Replays = s.control.Backfills(), s.control.Replays()
	}
	if v.Stats != nil {
		out.Running, out.InFlight = v.Stats.Running(), v.Stats.InFlight()
		for _, name := range v.Stats.SourceNames() {
			ss := sourceCounters(v.Stats.Source(name))
			if src, ok := v.Sources[name]; ok {
				addReport(&ss, telemetry.SourceStatus(src, out.Running))
			}
			out.Sources[name] = ss
		}
		for _, name := range v.Stats.SinkNames() {
			out.Sinks[name] = sinkCounters(v.Stats.Sink(name))
		}
	}
	// Errors quoted in the document may quote the configuration's
	// secrets: the whole text is redacted.
	b, _ := json.MarshalIndent(out, "", "  ")
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, s.redact(string(b))+"\n")
}

func sourceCounters(st *pipeline.SourceStats) sourceStatus {
	cp, at := st.Checkpoint()
	ss := sourceStatus{Read: st.Read.Load(), Dropped: st.Dropped.Load(), RuleFailures: st.RuleFailures.Load(), Checkpoint: string(cp),
		EventsIn: st.Read.Load(), EventsOut: st.Released.Load(), InFlight: st.InFlight.Load()}
	if !at.IsZero() {
		ss.CheckpointAt = at.UTC().Format(time.RFC3339Nano)
	}
	return ss
}

func addReport(ss *sourceStatus, r ferry.SourceStatus) {
	ss.State, ss.Connected, ss.Position = r.State, &r.Connected, r.Position
	if r.State != ferry.StateStopped {
		lag := r.Lag.Seconds()
		ss.LagSeconds = &lag
	}
	if r.Requests != nil {
		ss.Requests = make(map[string]uint64, len(r.Requests))
		for code, n := range r.Requests {
			ss.Requests[strconv.Itoa(code)] = n
		}
		ss.Buffered = &r.Buffered
	}
	for _, p := range r.Partitions {
		ss.Partitions = append(ss.Partitions, partitionStatus{Topic: p.Topic, Partition: p.Partition,
			Read: p.Read, Committed: p.Committed, End: p.End, Lag: p.Lag})
	}
}

func sinkCounters(st *pipeline.SinkStats) sinkStatus {
	r := st.Reachability()
	ks := sinkStatus{Delivered: st.Delivered.Load(), Retries: st.Retries.Load(), DeadLettered: st.DeadLettered.Load(),
		Writes: st.Writes.Load(), Failures: st.Failures.Load(), Buffered: max(st.Buffered.Load(), 0),
		Reachable: r.Reachable, LastError: r.LastError}
	if ks.Writes > 0 {
		ks.AvgWriteMs = float64(st.WriteNanos.Load()) / float64(ks.Writes) / 1e6
	}
	if !r.ErrorAt.IsZero() {
		ks.LastErrorAt = r.ErrorAt.UTC().Format(time.RFC3339Nano)
	}
	health := st.Health()
	ks.FailingKeys, ks.Held, ks.LastDeadLetterError = health.FailingKeys, health.Held, health.DeadLetterError
	if health.FailingKeys > 0 {
		ks.FailingSince = health.FailingSince.UTC().Format(time.RFC3339Nano)
	}
	if !health.DeadLetterAt.IsZero() {
		ks.LastDeadLetterAt = health.DeadLetterAt.UTC().Format(time.RFC3339Nano)
	}
	h := st.Latency.Snapshot()
	ks.Latency = latencyStatus{Count: h.Count, AvgMs: ms(h.Mean()), P50Ms: ms(h.Quantile(0.5)), P99Ms: ms(h.Quantile(0.99))}
	return ks
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
