package app

import (
	"context"
	"time"

	"github.com/ferry-cdc/ferry/connectors/mysql"
	"github.com/ferry-cdc/ferry/internal/state"
)

// quarantineRule is the Rule of the dead letters of quarantined tables'
// rows: `ferry dlq list` shows them; they hold undecoded rows, so after
// `ferry schema resync` a backfill of the table resends its rows.
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
