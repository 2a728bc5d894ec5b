package app

import (
	"context"
	"fmt"
	"time"

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/state"
)

// quarantineRule is the Rule of the dead letters of quarantined tables'
// rows: `ferry dlq list` shows them; they hold undecoded rows, so after
// `ferry schema resync` a replay of the binlog range they were read in
// delivers them (and removes them, DropReplayedQuarantine), or a backfill
// of the table resends its current rows.
const quarantineRule = "schema-quarantine"

// quarantineLetters stores the rows of a MySQL source's quarantined tables
// as dead letters.
type quarantineLetters struct{ store *state.Store }

func (q quarantineLetters) QuarantineRows(ctx context.Context, rows []mysql.QuarantinedRow) error {
	letters := make([]state.DeadLetter, len(rows))
	now := time.Now().UTC()
	for i, r := range rows {
		letters[i] = state.DeadLetter{Time: now, Source: r.Source, Rule: quarantineRule, EventID: r.EventID, Event: r.Event, Error: r.Reason}
	}
	return q.store.PutDeadLetters(ctx, letters)
}

// DropReplayedQuarantine removes the dead letters of source's quarantined
// rows that a replay of [from, until) over tables (empty: all) has just
// delivered: a replay that ends without error decoded every row of the
// range (a table still quarantined stops it), so these letters are
// duplicates of what the sinks now have. It returns how many it removed.
func DropReplayedQuarantine(ctx context.Context, store DeadLetterStore, source string, tables []string, from, until string) (int, error) {
	var seqs []uint64
	err := store.DeadLetters(ctx, func(d state.DeadLetter) error {
		if d.Rule == quarantineRule && d.Source == source && mysql.QuarantinedRowIn(d.Event, tables, from, until) {
			seqs = append(seqs, d.Seq)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read the dead letters of quarantined rows: %w", err)
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	if err := store.DeleteDeadLetters(ctx, seqs...); err != nil {
		return 0, fmt.Errorf("remove %d dead letters of quarantined rows the replay delivered: %w", len(seqs), err)
	}
	return len(seqs), nil
}
