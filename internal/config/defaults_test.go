package config

import (
	"testing"

	"github.com/ferry-cdc/ferry/internal/pipeline"
	"github.com/ferry-cdc/ferry/internal/retry"
)

// The configuration's defaults are declared in its ferry tags; the pipeline,
// usable without a configuration, keeps its own constants. They must agree,
// or a file that leaves a key out would run differently from one that
// writes the documented default.
func TestTagDefaultsAgreeWithThePipeline(t *testing.T) {
	c := defaults()
	for _, d := range []struct {
		key       string
		got, want any
	}{
		{"pipeline.max_in_flight", c.Pipeline.MaxInFlight, pipeline.DefaultMaxInFlight},
		{"pipeline.max_in_flight_bytes", c.Pipeline.MaxInFlightBytes, pipeline.DefaultMaxInFlightBytes},
		{"pipeline.shutdown_timeout", c.Pipeline.ShutdownTimeout, pipeline.DefaultShutdownTimeout},
		{"state.checkpoint_interval", c.State.CheckpointInterval, pipeline.DefaultCheckpointInterval},
		{"retry", defaultRetry(), retry.Default()},
	} {
		if d.got != d.want {
			t.Errorf("%s: the tag's default is %v, the pipeline's %v", d.key, d.got, d.want)
		}
	}
	if p := retry.Default(); p.InitialBackoff <= 0 || p.MaxBackoff < p.InitialBackoff || p.MaxRetryAfter <= 0 {
		t.Errorf("retry.Default() = %+v: its tags declare no usable defaults", p)
	}
}
