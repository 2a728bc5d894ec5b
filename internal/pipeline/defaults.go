package pipeline

import "time"

// The defaults of Config's bounds, which are also the `pipeline:` and
// `state:` configuration defaults (package config fills them from here).
const (
	// DefaultMaxInFlight is pipeline.max_in_flight by default.
	DefaultMaxInFlight = 10000
	// DefaultMaxInFlightBytes is pipeline.max_in_flight_bytes by default.
	DefaultMaxInFlightBytes = 16 << 20
	// DefaultCheckpointInterval is state.checkpoint_interval by default.
	DefaultCheckpointInterval = time.Second
	// DefaultShutdownTimeout is pipeline.shutdown_timeout by default.
	DefaultShutdownTimeout = 30 * time.Second
)
