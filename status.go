package ferry

import "time"

// SourceState is where a source stands, as operators see it.
type SourceState string

// The states a StatusReporter reports.
const (
	// StateConnecting: Open is establishing the first connection.
	StateConnecting SourceState = "connecting"
	// StateStreaming: the source is connected and reading (or, for a
	// request-driven source, its listener accepts requests).
	StateStreaming SourceState = "streaming"
	// StateReconnecting: the connection was lost and is being restored.
	StateReconnecting SourceState = "reconnecting"
	// StateStopped: the source is closed or failed for good.
	StateStopped SourceState = "stopped"
)

// SourceStatus is a point-in-time view of a source, for readiness checks,
// the admin /status endpoint and metrics.
type SourceStatus struct {
	State SourceState
	// Connected reports whether the source can receive new changes right
	// now: a live replication connection, a bound listener.
	Connected bool
	// Lag is how far the source's reading is behind its input, as of now:
	// for a binlog, the time since the commit of the last event read, or
	// since the last heartbeat that found nothing left to read, whichever is
	// later; for a request-driven source, how long the oldest accepted
	// request not yet delivered has waited. It grows while the source hears
	// nothing, so a silent dead connection shows a growing lag.
	Lag time.Duration
	// Position is where reading stands, as text users read
	// (mysql-bin.000003:1234 gtid=0-1-42); empty when not applicable.
	Position string
	// BinlogFile and BinlogPos are Position's numbers for binlog sources:
	// the file being read and the byte offset in it.
	BinlogFile string
	BinlogPos  uint64
	// Requests counts the requests a request-driven source answered, by
	// HTTP status code; nil for other sources.
	Requests map[int]uint64
	// Buffered is how many accepted requests are stored and not yet
	// delivered to every sink (request-driven sources).
	Buffered int64
	// Partitions are the partitions a Kafka source is assigned, in topic
	// and partition order; nil for other sources.
	Partitions []PartitionStatus
}

// PartitionStatus is where a consumer stands in one partition. Offsets are
// "next record" offsets, -1 when not known yet.
type PartitionStatus struct {
	Topic     string
	Partition int32
	// Read is the offset after the last record read, Committed the
	// offset the group committed (everything before it was delivered to
	// every sink), End the partition's high watermark as last seen.
	Read, Committed, End int64
	// Lag is End - Committed: records in the partition not yet delivered
	// and committed (0 while either is unknown).
	Lag int64
}

// StatusReporter is implemented by sources that can describe their state.
//
// Status may be called from any goroutine at any time: before Open (it then
// reports StateConnecting), while Read runs, and after Close (StateStopped).
// It must return quickly, from state the source keeps anyway, without I/O;
// it is called on every scrape of /metrics and every /readyz probe.
type StatusReporter interface {
	Status() SourceStatus
}
