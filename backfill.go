package ferry

import (
	"context"
	"time"
)

// BackfillRequest asks a source to (re)publish the current rows of one
// table while it keeps streaming.
type BackfillRequest struct {
	Table string   `json:"table"`           // DB.TABLE
	Where string   `json:"where,omitempty"` // optional SQL condition on the rows
	Key   []string `json:"key,omitempty"`   // unique NOT NULL key to page by when the table has no primary key
	Chunk int      `json:"chunk,omitempty"` // rows per chunk; 0 is the source's default
	// Rate caps rows per second; 0 is unlimited.
	Rate float64 `json:"rate,omitempty"`
	// To names the sinks every event of the backfill goes to; empty means
	// the rules' routing.
	To []string `json:"to,omitempty"`
	// Restart discards saved progress of the table and starts from its
	// first row.
	Restart bool `json:"restart,omitempty"`
}

// Backfill job states.
const (
	BackfillQueued  = "queued"
	BackfillRunning = "running"
	BackfillPaused  = "paused"
	BackfillDone    = "done"
	BackfillFailed  = "failed"
)

// BackfillProgress is what a source reports about one backfill.
type BackfillProgress struct {
	Source string   `json:"source"`
	Table  string   `json:"table"`
	Where  string   `json:"where,omitempty"`
	To     []string `json:"to,omitempty"`
	State  string   `json:"state"`
	// Rows counts the rows emitted so far (resumed backfills include the
	// rows of earlier runs); Estimate is the server's estimate of the rows
	// to read, 0 when unknown.
	Rows uint64 `json:"rows"`
	// ResumedRows are the rows done before this run took the backfill up
	// (after a pause or restart).
	ResumedRows uint64    `json:"resumed_rows,omitempty"`
	Chunks      uint64    `json:"chunks"`
	Estimate    uint64    `json:"estimate,omitempty"`
	LastKey     string    `json:"last_key,omitempty"`
	Started     time.Time `json:"started"`
	Updated     time.Time `json:"updated"`
	Error       string    `json:"error,omitempty"`
}

// Finished reports whether the backfill is over, successfully or not.
func (p BackfillProgress) Finished() bool {
	return p.State == BackfillDone || p.State == BackfillFailed
}

// Backfiller is implemented by sources that can re-read existing rows while
// streaming, without reordering them against the stream.
//
// Lifecycle: the methods may be called from any goroutine between Open and
// Close. Backfill checks the request (table, key, condition) and queues it,
// or resumes the saved progress of the same table; it returns once the job
// is accepted, not when it is done. A job's progress is part of the source's
// checkpoints, so it survives restarts. PauseBackfill stops a job after its
// current chunk; requesting the same table again resumes it.
type Backfiller interface {
	Backfill(ctx context.Context, req BackfillRequest) error
	Backfills() []BackfillProgress
	PauseBackfill(ctx context.Context, table string) error
}

// BackfillSizer is implemented by sources that can count the rows a
// backfill would read without reading them (`ferry backfill --dry-run`).
//
// Lifecycle: BackfillSize may be called on a built source that was never
// opened (the dry run opens nothing else); it checks req as Backfill does
// and connects for the duration of the call only.
type BackfillSizer interface {
	BackfillSize(ctx context.Context, req BackfillRequest) (uint64, error)
}
