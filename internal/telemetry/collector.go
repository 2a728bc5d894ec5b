package telemetry

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/pipeline"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The metrics read at scrape time. Names and labels are part of the
// product's contract (dashboards and alerts use them): change none.
var (
	sourceRead     = desc("ferry_source_events_read_total", "Changes read from the source.", "source")
	sourceDropped  = desc("ferry_source_changes_dropped_total", "Changes no rule matched and no default sink took.", "source")
	sourceRuleFail = desc("ferry_source_rule_failures_total", "Changes dead-lettered because a rule failed on them or the source could not decode them.", "source")
	sourceConn     = desc("ferry_source_connected", "1 while the source is connected (replication stream up, listener bound).", "source")
	sourceLag      = desc("ferry_source_lag_seconds", "How far the source's reading is behind its input; grows while it hears nothing.", "source")
	binlogFile     = desc("ferry_source_binlog_file_number", "Numeric suffix of the binlog file being read.", "source")
	binlogPos      = desc("ferry_source_binlog_position", "Byte offset of the read position in that binlog file.", "source")
	checkpointAge  = desc("ferry_source_checkpoint_age_seconds", "Time since the source's checkpoint was last saved.", "source")
	sinkDelivered  = desc("ferry_sink_events_delivered_total", "Events the sink acknowledged.", "sink")
	sinkRetries    = desc("ferry_sink_retries_total", "Event attempts that failed transiently and were retried.", "sink")
	sinkDead       = desc("ferry_sink_dead_letters_total", "Events given up on and dead-lettered.", "sink")
	sinkLatency    = desc("ferry_sink_delivery_latency_seconds", "Time from a change's commit (a request's receipt) to the sink's acknowledgement.", "sink")
	sinkReachable  = desc("ferry_sink_reachable", "1 unless the last write failed without the sink taking part.", "sink")
	sinkBuffer     = desc("ferry_sink_buffer_events", "Events routed to the sink and not yet acknowledged or dead-lettered.", "sink")
	sinkConc       = desc("ferry_sink_concurrency", "Requests the sink runs in parallel at most (HTTP sinks; adapts with adaptive_concurrency).", "sink")
	sinkRateWaits  = desc("ferry_sink_rate_limit_waits_total", "Requests that waited for the sink's rate limit (HTTP sinks with rate_limit).", "sink")
	sinkRateWaited = desc("ferry_sink_rate_limit_wait_seconds_total", "Time requests waited for the sink's rate limit, in total.", "sink")
	inFlight       = desc("ferry_pipeline_in_flight_events", "Changes read and not yet released (delivered, dead-lettered or dropped).")
	webhookReqs    = desc("ferry_webhook_requests_total", "Webhook requests answered, by HTTP status code.", "source", "code")
	webhookBuffer  = desc("ferry_webhook_buffer_records", "Accepted webhook requests stored and not yet delivered.", "source")
	kafkaLag       = desc("ferry_kafka_consumer_lag_records", "Records of an assigned partition not yet delivered and committed (high watermark - committed offset).",
		"source", "topic", "partition")
	kafkaCommitted = desc("ferry_kafka_committed_offset", "The consumer group's committed offset of an assigned partition.", "source", "topic", "partition")
)

var allDescs = []*prometheus.Desc{sourceRead, sourceDropped, sourceRuleFail, sourceConn, sourceLag, binlogFile, binlogPos,
	checkpointAge, sinkDelivered, sinkRetries, sinkDead, sinkLatency, sinkReachable, sinkBuffer, sinkConc, sinkRateWaits, sinkRateWaited, inFlight, webhookReqs, webhookBuffer,
	kafkaLag, kafkaCommitted}

// collector reads the bound view on every scrape.
type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	v := c.m.View()
	if v.Stats == nil {
		return
	}
	now := time.Now()
	for _, name := range v.Stats.SourceNames() {
		st := v.Stats.Source(name)
		counter(ch, sourceRead, st.Read.Load(), name)
		counter(ch, sourceDropped, st.Dropped.Load(), name)
		counter(ch, sourceRuleFail, st.RuleFailures.Load(), name)
		if _, at := st.Checkpoint(); !at.IsZero() {
			gauge(ch, checkpointAge, now.Sub(at).Seconds(), name)
		}
	}
	running := v.Stats.Running()
	for _, name := range slices.Sorted(maps.Keys(v.Sources)) {
		collectSource(ch, name, SourceStatus(v.Sources[name], running))
	}
	for _, name := range v.Stats.SinkNames() {
		collectSink(ch, name, v.Stats.Sink(name))
	}
	gauge(ch, inFlight, float64(v.Stats.InFlight()))
}

func collectSource(ch chan<- prometheus.Metric, name string, s ferry.SourceStatus) {
	gauge(ch, sourceConn, boolValue(s.Connected), name)
	if s.State != ferry.StateStopped {
		gauge(ch, sourceLag, s.Lag.Seconds(), name)
	}
	if s.BinlogFile != "" {
		if n, ok := FileNumber(s.BinlogFile); ok {
			gauge(ch, binlogFile, float64(n), name)
		}
		gauge(ch, binlogPos, float64(s.BinlogPos), name)
	}
	if s.Requests != nil {
		codes := make([]int, 0, len(s.Requests))
		for code := range s.Requests {
			codes = append(codes, code)
		}
		sort.Ints(codes)
		for _, code := range codes {
			counter(ch, webhookReqs, s.Requests[code], name, strconv.Itoa(code))
		}
		gauge(ch, webhookBuffer, float64(s.Buffered), name)
	}
	for _, p := range s.Partitions {
		part := strconv.Itoa(int(p.Partition))
		gauge(ch, kafkaLag, float64(p.Lag), name, p.Topic, part)
		if p.Committed >= 0 {
			gauge(ch, kafkaCommitted, float64(p.Committed), name, p.Topic, part)
		}
	}
}

func collectSink(ch chan<- prometheus.Metric, name string, st *pipeline.SinkStats) {
	counter(ch, sinkDelivered, st.Delivered.Load(), name)
	counter(ch, sinkRetries, st.Retries.Load(), name)
	counter(ch, sinkDead, st.DeadLettered.Load(), name)
	gauge(ch, sinkReachable, boolValue(st.Reachability().Reachable), name)
	gauge(ch, sinkBuffer, float64(max(st.Buffered.Load(), 0)), name)
	if c := st.Concurrency.Load(); c > 0 {
		gauge(ch, sinkConc, float64(c), name)
	}
	if st.RateLimited.Load() {
		counter(ch, sinkRateWaits, uint64(st.RateLimitWaits.Load()), name)
		ch <- prometheus.MustNewConstMetric(sinkRateWaited, prometheus.CounterValue, time.Duration(st.RateLimitWaitNanos.Load()).Seconds(), name)
	}
	h := st.Latency.Snapshot()
	bounds := pipeline.LatencyBuckets()
	buckets := make(map[float64]uint64, len(bounds))
	var cumulative uint64
	for i, b := range bounds {
		cumulative += h.Counts[i]
		buckets[b] = cumulative
	}
	ch <- prometheus.MustNewConstHistogram(sinkLatency, h.Count, h.Sum.Seconds(), buckets, name)
}

// FileNumber returns the numeric suffix of a binlog file name
// (mysql-bin.000042 is 42).
func FileNumber(file string) (uint64, bool) {
	i := strings.LastIndexByte(file, '.')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(file[i+1:], 10, 64)
	return n, err == nil
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
