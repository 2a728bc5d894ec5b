package mysql

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
)

// QuarantineStore durably keeps the row events of quarantined tables (a
// DDL the parser could not read left their schema unknown); the
// application stores them as dead letters.
//
// Lifecycle: set before Open (Source.SetQuarantine); called from the
// stream goroutine; returns once the rows are durable, before the
// checkpoint passes them.
type QuarantineStore interface {
	QuarantineRows(ctx context.Context, rows []QuarantinedRow) error
}

// QuarantinedRow is one row change of a quarantined table, undecoded.
type QuarantinedRow struct {
	Source  string
	EventID string // the id its event would have had
	Reason  string // the DDL that could not be applied, and where
	// Event holds the table, the op, the binlog position and the row's
	// images as go-mysql read them (column order, no names).
	Event json.RawMessage
}

// SetQuarantine makes the source dead-letter the rows of quarantined
// tables into q and stream the other tables on; without it, such rows stop
// the source like any undecodable event.
func (s *Source) SetQuarantine(q QuarantineStore) { s.quarantine = q }

// quarantinedEvent is QuarantinedRow.Event.
type quarantinedEvent struct {
	DB     string  `json:"db"`
	Table  string  `json:"table"`
	Op     string  `json:"op"`
	File   string  `json:"file"`
	Pos    uint32  `json:"pos"`
	Tx     string  `json:"tx"`
	Images [][]any `json:"images"`
}

// deadLetterRows hands the rows of a quarantined table's row event to the
// quarantine store, with the ids their events would have had.
func (s *stream) deadLetterRows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent, op string, step int, reason error) error {
	if s.quarantine == nil {
		s.tx.undecodable(s.file, h, s.committed, reason)
		return nil
	}
	at := h.LogPos - h.EventSize
	rows := make([]QuarantinedRow, 0, len(e.Rows)/step)
	for i := 0; i+step <= len(e.Rows); i += step {
		s.tx.ordinal++
		ev, err := json.Marshal(quarantinedEvent{DB: string(e.Table.Schema), Table: string(e.Table.Table), Op: op,
			File: s.file, Pos: at, Tx: s.tx.id, Images: e.Rows[i : i+step]})
		if err != nil {
			return fmt.Errorf("dead-letter a row of quarantined %s.%s: %w", e.Table.Schema, e.Table.Table, err)
		}
		rows = append(rows, QuarantinedRow{Source: s.source, EventID: s.tx.id + "#" + strconv.Itoa(s.tx.ordinal), Reason: reason.Error(), Event: ev})
	}
	s.warnOnce("quarantine:"+string(e.Table.Schema)+"."+string(e.Table.Table), "rows of a quarantined table are dead-lettered",
		"table", string(e.Table.Schema)+"."+string(e.Table.Table), "reason", reason)
	if err := s.quarantine.QuarantineRows(ctx, rows); err != nil {
		return fmt.Errorf("dead-letter rows of quarantined %s.%s: %w", e.Table.Schema, e.Table.Table, err)
	}
	return nil
}

// QuarantinedRowIn reports whether a quarantined row (QuarantinedRow.Event)
// was read in the binlog range [from, until) of FILE:POS positions (until
// may carry a " gtid=" suffix, as replay positions do) and, when tables
// (DB.TABLE) is not empty, belongs to one of them: a replay of that range
// delivered it once its table's quarantine was lifted. A range given
// another way (a GTID set, a time) covers nothing.
func QuarantinedRowIn(event json.RawMessage, tables []string, from, until string) bool {
	var e quarantinedEvent
	if err := json.Unmarshal(event, &e); err != nil || e.File == "" {
		return false
	}
	lo, err := parsePositionText(from)
	if err != nil || lo.File == "" {
		return false
	}
	until, _, _ = strings.Cut(until, " gtid=")
	hi, err := parsePositionText(until)
	if err != nil || hi.File == "" {
		return false
	}
	at := position{File: e.File, Pos: e.Pos}
	if comparePositions(at, lo) < 0 || comparePositions(at, hi) >= 0 {
		return false
	}
	return len(tables) == 0 || slices.Contains(tables, e.DB+"."+e.Table)
}
