package mysql

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferry-cdc/ferry"
)

// job is one backfill. The exported fields travel in the source's
// checkpoints, so a job resumes after a restart from its last delivered
// chunk.
type job struct {
	Table    string    `json:"table"` // DB.TABLE
	Where    string    `json:"where,omitempty"`
	Key      []string  `json:"key,omitempty"`
	Chunk    int       `json:"chunk"`
	Rate     float64   `json:"rate,omitempty"`
	To       []string  `json:"to,omitempty"`
	State    string    `json:"state"`
	Last     rawKey    `json:"last,omitempty"` // key of the last row emitted
	LastText string    `json:"last_text,omitempty"`
	Rows     uint64    `json:"rows"`
	Chunks   uint64    `json:"chunks"`
	Started  time.Time `json:"started"`

	estimate uint64
	resumed  uint64 // Rows when this run took the job up
	updated  time.Time
	err      string
}

func (j *job) db() string    { d, _, _ := strings.Cut(j.Table, "."); return d }
func (j *job) table() string { _, t, _ := strings.Cut(j.Table, "."); return t }

// sameOptions reports whether a request asks for what the job does.
func (j *job) sameOptions(req ferry.BackfillRequest) bool {
	return j.Where == req.Where && slices.Equal(j.Key, req.Key)
}

// jobList holds a source's backfills. Its lock is separate from the
// stream's, so status reads never wait behind a stream blocked on a slow
// sink.
type jobList struct {
	source string
	mu     sync.Mutex
	jobs   []*job // unfinished ones, and finished ones of this run for status
	// persisted is the JSON of the unfinished jobs, put into every checkpoint;
	// nil when there are none.
	persisted json.RawMessage
	wake      chan struct{}
}

func newJobList(source string) *jobList {
	return &jobList{source: source, wake: make(chan struct{}, 1)}
}

// restore takes the jobs saved in a checkpoint.
func (l *jobList) restore(saved []*job) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range saved {
		if j.State == ferry.BackfillRunning || j.State == ferry.BackfillQueued || j.State == ferry.BackfillPaused {
			j.updated, j.resumed = time.Now(), j.Rows
			l.jobs = append(l.jobs, j)
		}
	}
	l.changed()
}

// add queues a backfill, or resumes the saved one of the same table. It
// returns the job and whether it resumed saved progress.
func (l *jobList) add(req ferry.BackfillRequest, chunk int) (*job, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, j := range l.jobs {
		if j.Table != req.Table || finished(j.State) {
			continue
		}
		switch {
		case req.Restart:
			l.jobs = slices.Delete(l.jobs, i, i+1)
		case j.State == ferry.BackfillPaused && j.sameOptions(req):
			j.State, j.To, j.Rate, j.updated, j.resumed = ferry.BackfillRunning, req.To, req.Rate, time.Now(), j.Rows
			if req.Chunk > 0 {
				j.Chunk = req.Chunk
			}
			l.changed()
			l.signal()
			return j, true, nil
		case j.State == ferry.BackfillPaused:
			return nil, false, fmt.Errorf("%w: a paused backfill of %s with other options (where %q, key %v) is saved: repeat them to resume it, or restart", ferry.ErrConflict, j.Table, j.Where, j.Key)
		default:
			return nil, false, fmt.Errorf("%w: a backfill of %s is already %s (%d rows so far)", ferry.ErrConflict, j.Table, j.State, j.Rows)
		}
		break
	}
	j := &job{Table: req.Table, Where: req.Where, Key: req.Key, Chunk: cmp(req.Chunk, chunk), Rate: req.Rate, To: req.To,
		State: ferry.BackfillQueued, Started: time.Now().UTC(), updated: time.Now()}
	l.jobs = append(l.jobs, j)
	l.changed()
	l.signal()
	return j, false, nil
}

func cmp(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func finished(state string) bool { return state == ferry.BackfillDone || state == ferry.BackfillFailed }

func (l *jobList) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// next returns the first job to run (marking it running), or nil.
func (l *jobList) next() *job {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.jobs {
		if j.State == ferry.BackfillRunning || j.State == ferry.BackfillQueued {
			if j.State == ferry.BackfillQueued {
				j.State, j.updated = ferry.BackfillRunning, time.Now()
				l.changed()
			}
			return j
		}
	}
	return nil
}

// running reports whether j should go on (it was not paused).
func (l *jobList) running(j *job) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return j.State == ferry.BackfillRunning
}

func (l *jobList) last(j *job) rawKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	return j.Last
}

func (l *jobList) setEstimate(j *job, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j.estimate = n
}

// chunkEmitted records a chunk handed to the pipeline: emitted rows, and
// rows left out because the stream carried a newer state of them.
func (l *jobList) chunkEmitted(j *job, c *chunk, emitted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.last != nil {
		j.Last, j.LastText = c.last, c.lastText
	}
	j.Rows += uint64(emitted)
	j.Chunks++
	j.updated = time.Now()
	if c.final {
		j.State = ferry.BackfillDone
	}
	l.changed()
}

func (l *jobList) fail(j *job, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j.State, j.err, j.updated = ferry.BackfillFailed, err.Error(), time.Now()
	l.changed()
}

// pause stops the unfinished job of table after its current chunk.
func (l *jobList) pause(table string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.jobs {
		if j.Table == table && (j.State == ferry.BackfillRunning || j.State == ferry.BackfillQueued) {
			j.State, j.updated = ferry.BackfillPaused, time.Now()
			l.changed()
			return nil
		}
	}
	return fmt.Errorf("no running backfill of %s", table)
}

// changed re-encodes the persisted jobs. Called with l.mu held.
func (l *jobList) changed() {
	var open []*job
	for _, j := range l.jobs {
		if !finished(j.State) {
			open = append(open, j)
		}
	}
	l.persisted = nil
	if len(open) > 0 {
		l.persisted, _ = json.Marshal(open) // strings, numbers and rawKeys cannot fail
	}
}

// saved returns the JSON of the unfinished jobs, nil when none.
func (l *jobList) saved() json.RawMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.persisted
}

// progress reports every job of this run.
func (l *jobList) progress() []ferry.BackfillProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ferry.BackfillProgress, 0, len(l.jobs))
	for _, j := range l.jobs {
		out = append(out, ferry.BackfillProgress{Source: l.source, Table: j.Table, Where: j.Where, To: j.To, State: j.State,
			Rows: j.Rows, ResumedRows: j.resumed, Chunks: j.Chunks, Estimate: j.estimate, LastKey: j.LastText, Started: j.Started,
			Updated: j.updated.UTC(), Error: j.err})
	}
	return out
}

// checkpointJSON is a checkpoint with backfill progress: the position plus
// the unfinished jobs.
type checkpointJSON struct {
	position
	Backfills json.RawMessage `json:"backfills,omitempty"`
}

// decodeJobs returns the jobs saved in a checkpoint.
func decodeJobs(b ferry.Position) ([]*job, error) {
	var cp struct {
		Backfills []*job `json:"backfills"`
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, fmt.Errorf("decode backfill progress: %w", err)
	}
	return cp.Backfills, nil
}
