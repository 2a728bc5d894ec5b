package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// errNotBoundary: a position is not where a transaction begins.
var errNotBoundary = errors.New("not a transaction boundary")

// boundaryEvents never occur inside a transaction: a position at one of
// them is where a transaction (or nothing) begins.
var boundaryEvents = map[string]bool{
	"Gtid": true, "Anonymous_Gtid": true, "Format_desc": true, "Rotate": true, "Gtid_list": true,
	"Binlog_checkpoint": true, "Previous_gtids": true, "Stop": true, "Start_encryption": true,
}

// checkBoundary refuses a FILE:POS that is not where a transaction begins:
// reading from inside one would emit its tail under wrong ids and miss its
// head (a replay would report "0 changes"). The refusal names the
// transaction's first position and the next transaction's.
func checkBoundary(conn *client.Conn, p position) error {
	file := "'" + gomysql.Escape(p.File) + "'"
	r, err := conn.Execute("SHOW BINLOG EVENTS IN " + file + " FROM " + strconv.FormatUint(uint64(p.Pos), 10) + " LIMIT 1")
	var me *gomysql.MyError
	switch {
	case errors.As(err, &me) && strings.Contains(me.Message, "greater than actual file size"):
		return fmt.Errorf("position %s is beyond the end of %s: %w", p, p.File, errNotBoundary)
	case errors.As(err, &me) && !strings.Contains(me.Message, "Wrong offset"):
		return nil // a purged file, a missing privilege: the binlog dump names those better
	case err != nil && !errors.As(err, &me):
		return err
	case err == nil && len(r.Values) == 0:
		return nil // the end of the file: the next transaction begins here
	case err == nil:
		typ, _ := r.GetString(0, 2)
		info, _ := r.GetString(0, 5)
		if boundaryEvents[typ] || typ == "Query" && strings.EqualFold(strings.TrimSpace(info), "BEGIN") {
			return nil
		}
	}
	// Inside a transaction, or not the start of an event: find where the
	// transactions around it begin.
	sc := &boundaryScan{target: uint64(p.Pos)}
	var res gomysql.Result
	// The callback reads on to the end even once it knows: the protocol
	// offers no way to leave a result set early and keep the connection.
	if err := conn.ExecuteSelectStreaming("SHOW BINLOG EVENTS IN "+file, &res, sc.row, nil); err != nil {
		return fmt.Errorf("read the events of %s: %w", p.File, err)
	}
	return sc.verdict(p)
}

// boundaryScan follows transaction boundaries through SHOW BINLOG EVENTS
// rows, with the rules the stream uses (see txboundary.go).
type boundaryScan struct {
	target   uint64
	inTx     bool
	explicit bool
	endsNext bool   // the event just read ends the transaction
	txStart  uint64 // first position of the transaction being read
	// the answer
	found     bool   // the target is the start of an event
	inside    bool   // ... inside a transaction
	start     uint64 // the first position of the transaction around the target
	next      uint64 // the first boundary after the target
	nextFound bool
}

func (sc *boundaryScan) row(row []gomysql.FieldValue) error {
	if sc.nextFound {
		return nil
	}
	pos, err := strconv.ParseUint(fieldText(row[1]), 10, 64)
	if err != nil {
		return fmt.Errorf("SHOW BINLOG EVENTS position %q: %w", fieldText(row[1]), err)
	}
	if sc.endsNext {
		sc.inTx, sc.explicit, sc.endsNext = false, false, false
	}
	if pos > sc.target && !sc.inTx { // the first boundary after the target
		sc.next, sc.nextFound = pos, true
		return nil
	}
	if pos == sc.target {
		sc.found, sc.inside = true, sc.inTx
	}
	sc.event(pos, fieldText(row[2]), fieldText(row[5]))
	if pos <= sc.target {
		sc.start = pos
		if sc.inTx {
			sc.start = sc.txStart
		}
	}
	return nil
}

// fieldText is a text-protocol value as the server sent it.
func fieldText(v gomysql.FieldValue) string {
	if v.Type == gomysql.FieldValueTypeString {
		return string(v.AsString())
	}
	return v.String()
}

// event applies one event to the transaction state.
func (sc *boundaryScan) event(pos uint64, typ, info string) {
	begin := func(explicit bool) {
		if !sc.inTx {
			sc.inTx, sc.txStart = true, pos
		}
		sc.explicit = sc.explicit || explicit
	}
	switch typ {
	case "Gtid", "Anonymous_Gtid":
		sc.inTx, sc.txStart = true, pos
		sc.explicit = strings.HasPrefix(info, "BEGIN GTID")
	case "Xid":
		sc.endsNext = true
	case "Query":
		if _, stmt, ok := strings.Cut(info, "; "); ok && strings.HasPrefix(info, "use ") {
			info = stmt
		}
		switch kind, _ := classifyQuery(strings.TrimSpace(info)); kind {
		case queryBegin:
			begin(true)
		case queryCommit, queryRollback:
			sc.endsNext = true
		case querySavepoint, queryRollbackTo, queryXA:
		default:
			if !sc.explicit {
				begin(false)
				sc.endsNext = true
			}
		}
	case "Table_map", "Write_rows_v1", "Update_rows_v1", "Delete_rows_v1", "Write_rows", "Update_rows", "Delete_rows",
		"Annotate_rows", "Rows_query", "Intvar", "Rand", "User var", "User_var":
		begin(true)
	}
}

func (sc *boundaryScan) verdict(p position) error {
	at := func(pos uint64) string { return p.File + ":" + strconv.FormatUint(pos, 10) }
	next := ""
	if sc.nextFound {
		next = ", or the next one at " + at(sc.next)
	}
	switch {
	case sc.found && !sc.inside:
		return nil
	case sc.found:
		return fmt.Errorf("position %s is inside a transaction, which begins at %s: a transaction is read whole, "+
			"so give its first position %s%s: %w", p, at(sc.start), at(sc.start), next, errNotBoundary)
	}
	return fmt.Errorf("position %s is not the start of an event in %s; the transaction around it begins at %s%s: %w",
		p, p.File, at(sc.start), next, errNotBoundary)
}

// CheckPosition refuses a position that is not a transaction boundary on
// the server cfg names (`ferry checkpoint set`); GTID sets always are.
func CheckPosition(ctx context.Context, name string, cfg *Config, pos ferry.Position) error {
	p, err := decodePosition(pos)
	if err != nil || p.File == "" || p.GTID != "" {
		return err
	}
	s, err := New(name, cfg, nil)
	if err != nil {
		return err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("mysql source %s: cannot check the position on %s (pass --unchecked to set it without the check): %w", name, cfg.Addr, err)
	}
	defer conn.Close()
	if err := checkBoundary(conn, p); err != nil {
		return fmt.Errorf("mysql source %s: %w", name, err)
	}
	return nil
}
