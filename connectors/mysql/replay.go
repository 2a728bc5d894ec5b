package mysql

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/ferry-cdc/ferry"
)

// Replay is a range of the binlog to read again.
type Replay struct {
	From      string    // FILE:POS or GTID set of a transaction boundary
	Until     string    // FILE:POS to stop at; empty: the end of the binlog at Open
	UntilTime time.Time // stop before the first transaction committed after it
	Tables    []string  // DB.TABLE; empty: every captured table
	To        []string  // sinks; empty: the rules' routing
}

// NewReplay returns a source that re-reads a range of the binlog and emits
// its changes with their original ids, then ends. It saves no checkpoint.
// It registers as replica serverID, which must not be the one a running
// Ferry uses.
func NewReplay(name string, cfg *Config, serverID uint32, r Replay, log *slog.Logger) (*Source, error) {
	if _, err := parsePositionText(r.From); err != nil {
		return nil, ferry.Invalid("from", "%v", err)
	}
	if r.Until != "" {
		p, err := parsePositionText(r.Until)
		if err != nil || p.File == "" {
			return nil, ferry.Invalid("until", "must be FILE:POS or a time (RFC 3339), not %q", r.Until)
		}
	}
	s, err := newSource(name, cfg, serverID, replayRun{r: r}, log)
	if err != nil {
		return nil, err
	}
	for _, t := range r.Tables {
		if err := s.captures(t); err != nil {
			return nil, err
		}
	}
	if len(r.Tables) > 0 {
		if s.filter, err = narrowedFilter(cfg, r.Tables); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// replayRun is the role of a replay: re-read a range of the binlog with
// the original ids, save no checkpoint, end at the range's end.
type replayRun struct{ r Replay }

func (p replayRun) start(*Config) string { return p.r.From }

// checkTables: a replay may read a table dropped since.
func (replayRun) checkTables(*Source, *client.Conn) error { return nil }

func (replayRun) keep(saved []*job) ([]*job, bool) { return saved, true }

func (p replayRun) prepare(_ context.Context, s *Source, conn *client.Conn, st *stream, _ bool) error {
	st.forceTo, st.noCheckpoints = p.r.To, true
	var err error
	st.end, err = p.end(s, conn, st.committed)
	return err
}

// run: a replay runs no backfills; the stream ends it.
func (replayRun) run(context.Context, *Source) {}

func (p replayRun) explainLostStart(addr string, err error) error {
	return fmt.Errorf("mysql %s: the replay range starting at %s is no longer in the server's binlogs (purged, or from another server); "+
		"SHOW BINARY LOGS lists what is left: %w", addr, p.r.From, err)
}

func (p replayRun) describeStart(position) string { return "the replay range starting at " + p.r.From }

// end is where a replay stops: --until or the binlog's end now,
// whichever comes first, and --until's time if given.
func (p replayRun) end(s *Source, conn *client.Conn, start position) (*replayEnd, error) {
	file, pos, err := s.masterStatus(conn)
	if err != nil {
		return nil, err
	}
	end := &replayEnd{pos: position{File: file, Pos: pos}, time: p.r.UntilTime}
	if p.r.Until != "" {
		until, _ := parsePositionText(p.r.Until) // checked by NewReplay
		if comparePositions(until, end.pos) < 0 {
			end.pos = until
		}
	}
	if start.File != "" && comparePositions(end.pos, start) < 0 {
		return nil, ferry.Invalid("until", "%s is before the start %s", end.pos, start)
	}
	args := []any{"from", start.String(), "until", end.pos.String()}
	if !end.time.IsZero() {
		args = append(args, "until_time", end.time)
	}
	s.log.Info("replaying", args...)
	return end, nil
}

// ReplayPosition reports where a replay stands and where it ends, for
// progress displays.
func (s *Source) ReplayPosition() (at, end string) {
	if s.st == nil || s.st.end == nil {
		return "", ""
	}
	if p := s.st.progress.Load(); p != nil {
		at = p.String()
	}
	return at, s.st.end.pos.String()
}
