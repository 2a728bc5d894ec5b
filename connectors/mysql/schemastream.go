package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// errUnreadableDDL wraps a statement the parser could not read that names
// no captured table: it is logged and skipped.
var errUnreadableDDL = errors.New("unreadable statement ignored")

// schemaDDL moves the schema history by a DDL statement read at the query
// event h, before the checkpoint passes it.
func (s *stream) schemaDDL(ctx context.Context, h *replication.EventHeader, e *replication.QueryEvent, q string) error {
	if s.planner.schemas == nil || !isSchemaDDL(q) {
		return nil
	}
	at := position{File: s.file, Pos: h.LogPos - h.EventSize}
	a := &ddlApplier{h: s.planner.schemas, at: at, db: string(e.Schema), ddl: q,
		captured: s.planner.filter.table, mariadb: s.planner.flavor == gomysql.MariaDBFlavor, collate: collationCharset}
	quarantined, err := a.apply(ctx, q)
	s.planner.plans = nil // a table id may survive a DDL; plans are rebuilt from the new version
	switch {
	case errors.Is(err, errUnreadableDDL):
		s.log.Warn("a DDL statement could not be parsed; it names no captured table and is skipped",
			"at", at.String(), "statement", truncate(q, 200), "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("schema history: apply the DDL at %s: %w", at, err)
	case quarantined != "":
		s.log.Error("a DDL statement could not be parsed: its table is quarantined (its row events without column metadata "+
			"are dead-lettered; with binlog_row_metadata=FULL they are decoded from the binlog), the other tables keep streaming; "+
			"once the table is as wanted, run `ferry schema resync`",
			"table", quarantined, "at", at.String(), "statement", truncate(q, 200), "source", s.source)
	}
	return nil
}

// collationCharset is the character set of a collation: its name up to
// the first underscore (latin1_swedish_ci, utf8mb4_unicode_520_ci), or
// binary.
func collationCharset(collation string) string {
	c := strings.ToLower(collation)
	if i := strings.IndexByte(c, '_'); i > 0 {
		return c[:i]
	}
	return c
}

// attachSchemaHistory gives the stream its schema history. Without full
// row metadata it is required; with it, it only serves JSON columns and
// cross-checks, so failing to build it is a warning.
func (s *Source) attachSchemaHistory(ctx context.Context, conn *client.Conn, st *stream) error {
	st.planner.readTable = s.meta.readTable
	st.quarantine = s.quarantine
	st.planner.warn = st.warnOnce
	h, err := s.baseSchemaHistory(ctx, conn)
	if err != nil {
		if s.info.fullMetadata {
			s.log.Warn("cannot build the schema history; decoding with the binlog's column metadata only", "error", err)
			return nil
		}
		return err
	}
	st.planner.schemas = h
	if !s.info.fullMetadata {
		s.log.Info("binlog_row_metadata is not FULL: decoding rows with the schema history", "history_from", h.base.At.String())
	}
	return nil
}
