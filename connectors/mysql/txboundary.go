package mysql

import (
	"regexp"
	"strings"
)

// Where a transaction ends. The servers mark it, and the marks differ:
//
//   - MariaDB writes a GTID event at the start of every event group. Without
//     the FL_STANDALONE flag ("BEGIN GTID" in SHOW BINLOG EVENTS) the group
//     is a transaction that ends only at its XID event or a COMMIT query
//     (ROLLBACK when non-transactional changes of a rolled-back transaction
//     were logged); a standalone GTID (DDL) ends after its one statement.
//   - MySQL writes a GTID (or anonymous GTID) event and then a BEGIN query
//     for a transaction, or the DDL statement alone. MySQL 8's atomic
//     CREATE TABLE ... SELECT logs "CREATE TABLE ... START TRANSACTION",
//     its rows, and an XID.
//   - Without GTID events, a BEGIN query opens the transaction.
//
// Inside an open transaction the server also logs statements that do not
// end it: SAVEPOINT, ROLLBACK TO (when non-transactional changes kept the
// rolled-back rows in the log), the CREATE TABLE of a CREATE TABLE ...
// SELECT. Only outside a transaction does a statement commit on its own.

// queryKind is what a Query event means for the transaction around it.
type queryKind uint8

const (
	queryStatement  queryKind = iota // DDL or another statement
	queryBegin                       // opens a transaction
	queryCommit                      // ends it, keeping its changes
	queryRollback                    // ends it, discarding its changes
	querySavepoint                   // SAVEPOINT name
	queryRollbackTo                  // ROLLBACK TO name: discards changes made since the savepoint
	queryXA                          // XA START/END/PREPARE/COMMIT
	queryDML                         // a statement-based row change
)

var (
	savepointStmt  = regexp.MustCompile("(?is)^SAVEPOINT\\s+(.+?)\\s*;?$")
	rollbackToStmt = regexp.MustCompile("(?is)^ROLLBACK\\s+(?:WORK\\s+)?TO\\s+(?:SAVEPOINT\\s+)?(.+?)\\s*;?$")
	// startsTransaction: MySQL 8 logs an atomic CREATE TABLE ... SELECT as
	// its CREATE TABLE with this suffix, followed by the rows and an XID.
	startsTransaction = regexp.MustCompile(`(?is)\sSTART\s+TRANSACTION\s*;?$`)
)

// classifyQuery tells what statement q is and, for savepoints, its name.
func classifyQuery(q string) (queryKind, string) {
	switch strings.ToUpper(firstWord(q)) {
	case "BEGIN":
		return queryBegin, ""
	case "COMMIT":
		return queryCommit, ""
	case "ROLLBACK":
		if m := rollbackToStmt.FindStringSubmatch(q); m != nil {
			return queryRollbackTo, unquoteIdent(m[1])
		}
		return queryRollback, ""
	case "SAVEPOINT":
		if m := savepointStmt.FindStringSubmatch(q); m != nil {
			return querySavepoint, unquoteIdent(m[1])
		}
	case "XA":
		return queryXA, ""
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD":
		return queryDML, ""
	}
	if startsTransaction.MatchString(q) {
		return queryBegin, ""
	}
	return queryStatement, ""
}

// unquoteIdent removes the backticks the server puts around an identifier;
// savepoint names compare case-insensitively, as the server compares them.
func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		s = strings.ReplaceAll(s[1:len(s)-1], "``", "`")
	}
	return strings.ToLower(s)
}

// savepoint is where a transaction stood when a SAVEPOINT was logged.
type savepoint struct {
	name    string
	ordinal int // txState.ordinal then
	changes int // changes captured then, streamed or buffered
}

// setSavepoint records a savepoint; one of the same name is replaced.
func (t *txState) setSavepoint(name string) {
	t.savepoints = removeSavepoint(t.savepoints, name)
	t.savepoints = append(t.savepoints, savepoint{name: name, ordinal: t.ordinal, changes: t.streamed + len(t.buf)})
}

func removeSavepoint(sps []savepoint, name string) []savepoint {
	for i, sp := range sps {
		if sp.name == name {
			return append(sps[:i], sps[i+1:]...)
		}
	}
	return sps
}

// rollbackTo discards the changes made since the named savepoint, which
// stays set while later ones are forgotten, like the server does. Ordinals
// continue from the savepoint's, so the kept changes stay consecutive. It
// returns false when the savepoint is unknown and how many discarded changes
// had already been streamed.
func (t *txState) rollbackTo(name string) (found bool, alreadySent int) {
	for i, sp := range t.savepoints {
		if sp.name != name {
			continue
		}
		t.savepoints = t.savepoints[:i+1]
		t.ordinal = sp.ordinal
		keep := sp.changes - t.streamed
		if keep < 0 {
			alreadySent, keep = -keep, 0
		}
		clear(t.buf[keep:])
		t.buf = t.buf[:keep]
		return true, alreadySent
	}
	return false, 0
}
