package mysql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// truncateStmt matches TRUNCATE [TABLE] [db.]table as the server logs it.
var truncateStmt = regexp.MustCompile("(?is)^TRUNCATE\\s+(?:TABLE\\s+)?(?:(`(?:[^`]|``)+`|[\\w$]+)\\s*\\.\\s*)?(`(?:[^`]|``)+`|[\\w$]+)\\s*;?$")

// parseTruncate returns the table a TRUNCATE statement empties; db is the
// statement's default database, used when the name is not qualified.
func parseTruncate(q, db string) (string, string, bool) {
	m := truncateStmt.FindStringSubmatch(q)
	if m == nil {
		return "", "", false
	}
	if m[1] != "" {
		db = identName(m[1])
	}
	return db, identName(m[2]), true
}

// identName removes an identifier's backticks, keeping its case.
func identName(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return s
}

// truncated adds the event of a TRUNCATE TABLE of a captured table to the
// transaction the statement is (it commits on its own right after).
func (s *stream) truncated(h *replication.EventHeader, db, table string) {
	if !s.planner.filter.table(db, table) {
		return
	}
	s.tx.ordinal++
	s.appendChange(ferry.Change{
		ID: s.tx.id + "#" + strconv.Itoa(s.tx.ordinal), Op: ferry.OpTruncate, Source: s.source, DB: db, Table: table, Time: s.tx.time,
		Binlog: ferry.BinlogCoords{File: s.file, Pos: uint64(h.LogPos - h.EventSize), GTID: s.gtid.current(),
			ServerID: h.ServerID, TxID: s.tx.id, TxOrder: s.tx.ordinal},
		To: s.forceTo,
	})
}

// undecodableRows is a row event the source cannot decode (its table map
// lacks the column metadata, for one). The transaction is read to its end
// and the source stops there, naming the positions an operator needs.
type undecodableRows struct {
	at      position // the row event
	txStart position // where the transaction begins: the checkpoint stays here
	err     error
}

func (t *txState) undecodable(file string, h *replication.EventHeader, txStart position, err error) {
	if t.bad == nil {
		t.bad = &undecodableRows{at: position{File: file, Pos: h.LogPos - h.EventSize}, txStart: txStart, err: err}
	}
}

// explain is the one line that stops the source: what failed, where, and
// the two ways on, neither of which needs a guessed position.
func (u *undecodableRows) explain(source, tx string, streamed int, next position) error {
	sent := "nothing of this transaction was delivered"
	if streamed > 0 { // it outgrew max_tx_buffer before the event
		sent = strconv.Itoa(streamed) + " changes of this transaction were already streamed"
	}
	return fmt.Errorf("mysql source %s: cannot decode the row event at %s in transaction %s "+
		"(from %s to %s): %w; %s and the checkpoint stays before it. "+
		"A restart reads it again; to skip exactly this transaction run "+
		"`ferry checkpoint set --source %s %s` and restart (then `ferry backfill` its tables to resend their current rows)",
		source, u.at, tx, u.txStart.String(), next, u.err, sent, source, next)
}
