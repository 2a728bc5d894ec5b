package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// rawEvents decodes the binlog events eventFramer hands over as bytes: it
// verifies each event's checksum and decodes only FORMAT_DESCRIPTION and
// ROTATE events, leaving the others as GenericEvents (as go-mysql's parser
// does in raw mode). Decoded by go-mysql, each single-row
// transaction cost a 576-byte TableMapEvent decoded afresh (and then
// overwritten with the one decoded before), a map of the statement's table
// maps made again at every statement's end, and a header-only rows event
// (issue 18). rawEvents instead decodes, on the reading goroutine:
//   - GTID, XID and QUERY events, with go-mysql's own decoders;
//   - a table map: the event decoded for its table id's last one when the
//     bytes are the same (every transaction logs its tables' maps again),
//     else the event decoded whole by a parser of its own;
//   - a rows event's header, leaving its row images to the stream
//     (binrows.go), which hands back to that parser the rows it does not
//     decode itself (parseRows);
//   - GTID lists, compressed queries and the rows events Ferry never
//     decodes itself (v0, compressed, partial), with that parser.
//
// Events the stream does not read (heartbeats, annotations, checkpoints)
// stay as they came.
type rawEvents struct {
	flavor string
	// fde is the connection's FORMAT_DESCRIPTION event, fdeRaw its bytes.
	fde    *replication.FormatDescriptionEvent
	fdeRaw []byte
	// parser decodes what rawEvents does not; it has read fdeRaw (nil: not
	// yet).
	parser *replication.BinlogParser
	// maps is the last table map of each table id; stmt those of the
	// current statement, which its rows events refer to (emptied at a
	// statement's end, as go-mysql does).
	maps map[uint64]*tableMapSeen
	stmt map[uint64]*tableMapSeen
}

// tableMapSeen is a table map event: its table id, its bytes whole (to
// hand to the parser again) and without header and checksum, and the event
// decoded.
type tableMapSeen struct {
	id        uint64
	raw, body []byte
	ev        *replication.TableMapEvent
}

// maxTableMaps bounds the table ids remembered; past it they are forgotten
// and decoded again (table ids are renewed by DDL and FLUSH TABLES).
const maxTableMaps = 4096

var (
	// errNoTableMap: a rows event refers to a table id no table map of its
	// statement named.
	errNoTableMap = errors.New("no table map event for its table id in its statement")
	// errCompressedTransaction: MySQL logged a transaction compressed
	// (binlog_transaction_compression=ON), which Ferry does not read; it
	// stops rather than skip the transaction's changes.
	errCompressedTransaction = errors.New("a compressed transaction (TRANSACTION_PAYLOAD_EVENT): Ferry does not read them; set binlog_transaction_compression=OFF on the server (SET GLOBAL binlog_transaction_compression=OFF and in its config file) and resume")
)

// decode gives ev, if it came as bytes and the stream reads it, its
// decoded event. A rows event Ferry decodes itself is left in rows.
func (r *rawEvents) decode(ev *replication.BinlogEvent, rows *pendingRows) (err error) {
	// go-mysql's decoders index their input unchecked: a malformed event
	// fails the connection, as it did when go-mysql decoded it itself.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode %s event at log position %d: %d bytes: %v", ev.Header.EventType, ev.Header.LogPos, len(ev.RawData), p)
		}
	}()
	switch e := ev.Event.(type) {
	case *replication.FormatDescriptionEvent:
		r.fde, r.fdeRaw, r.parser = e, ev.RawData, nil
		clear(r.maps) // a new file or server: its table ids are read afresh
		clear(r.stmt)
	case *replication.GenericEvent:
		typed, err := r.typed(ev.Header, ev.RawData, e.Data, rows)
		if err != nil {
			return fmt.Errorf("decode %s event at log position %d: %w", ev.Header.EventType, ev.Header.LogPos, err)
		}
		if typed != nil {
			ev.Event = typed
		}
	}
	return nil
}

// typed decodes an event's body (data, checksum removed; raw is the whole
// event); nil for an event the stream does not read.
func (r *rawEvents) typed(h *replication.EventHeader, raw, data []byte, rows *pendingRows) (replication.Event, error) {
	switch t := h.EventType; t {
	case replication.MARIADB_GTID_EVENT:
		e := &replication.MariadbGTIDEvent{}
		e.GTID.ServerID = h.ServerID
		return e, e.Decode(data)
	case replication.GTID_EVENT, replication.ANONYMOUS_GTID_EVENT:
		e := &replication.GTIDEvent{}
		return e, e.Decode(data)
	case replication.XID_EVENT:
		e := &replication.XIDEvent{}
		return e, e.Decode(data)
	case replication.QUERY_EVENT:
		e := &replication.QueryEvent{}
		return e, e.Decode(data)
	case replication.TABLE_MAP_EVENT:
		return r.tableMap(raw, data)
	case replication.MARIADB_GTID_LIST_EVENT, replication.PREVIOUS_GTIDS_EVENT, replication.MARIADB_QUERY_COMPRESSED_EVENT:
		return r.parse(raw)
	default:
		if _, ok := rowsVersion(t); ok {
			return r.rows(h, raw, data, rows)
		}
	}
	return nil, nil
}

// tableIDSize is how many bytes a table id takes in events of type t.
func (r *rawEvents) tableIDSize(t replication.EventType) (int, error) {
	if r.fde == nil || int(t) > len(r.fde.EventTypeHeaderLengths) {
		return 0, errors.New("no format description event announced its header length")
	}
	if r.fde.EventTypeHeaderLengths[t-1] == 6 {
		return 4, nil
	}
	return 6, nil
}

func (r *rawEvents) tableMap(raw, data []byte) (replication.Event, error) {
	n, err := r.tableIDSize(replication.TABLE_MAP_EVENT)
	if err != nil {
		return nil, err
	}
	if len(data) < n {
		return nil, fmt.Errorf("%d bytes", len(data))
	}
	id := gomysql.FixedLengthInt(data[:n])
	seen := r.maps[id]
	if seen == nil || !bytes.Equal(seen.body, data) {
		if len(r.maps) >= maxTableMaps {
			// The parser keeps every table map it decoded: forget those too.
			clear(r.maps)
			r.parser = nil
		}
		// Kept past this event: its own copy, not a slice of the dump's
		// block (packetReader), which it would keep alive.
		raw = bytes.Clone(raw)
		seen = &tableMapSeen{id: id, raw: raw, body: raw[replication.EventHeaderSize : replication.EventHeaderSize+len(data)]}
		if err := r.parseTableMap(seen); err != nil {
			return nil, err
		}
		if r.maps == nil {
			r.maps = map[uint64]*tableMapSeen{}
		}
		r.maps[id] = seen
	}
	if r.stmt == nil {
		r.stmt = map[uint64]*tableMapSeen{}
	}
	r.stmt[id] = seen
	return seen.ev, nil
}

// rowsVersion is the version of a rows event type's header (2 carries
// extra data), and whether t is a rows event.
func rowsVersion(t replication.EventType) (int, bool) {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv0:
		return 0, true
	case replication.WRITE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv1,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return 1, true
	case replication.WRITE_ROWS_EVENTv2, replication.UPDATE_ROWS_EVENTv2, replication.DELETE_ROWS_EVENTv2,
		replication.PARTIAL_UPDATE_ROWS_EVENT:
		return 2, true
	}
	return 0, false
}

// rowsOp is what a rows event type does, as go-mysql's RowsEvent.Type
// tells it: the stream reads the type from the event's header, which
// rows events decoded here carry and go-mysql's do too.
func rowsOp(t replication.EventType) replication.EnumRowsEventType {
	switch t {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		return replication.EnumRowsEventTypeInsert
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
		return replication.EnumRowsEventTypeUpdate
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		return replication.EnumRowsEventTypeDelete
	}
	return replication.EnumRowsEventTypeUnknown
}

// twoImages reports whether a rows event type logs a before and an after
// image per row (its header then has a second column bitmap).
func twoImages(t replication.EventType) bool {
	switch t {
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.PARTIAL_UPDATE_ROWS_EVENT:
		return true
	}
	return false
}

// rows decodes a rows event's header, as go-mysql's RowsEvent.DecodeHeader
// does, and leaves the row images in rows for the stream; events whose
// images Ferry never decodes itself are decoded whole by the parser.
func (r *rawEvents) rows(h *replication.EventHeader, raw, data []byte, rows *pendingRows) (replication.Event, error) {
	e, pos, err := r.rowsHeader(h.EventType, data)
	if err != nil {
		return nil, err
	}
	seen := r.stmt[e.TableID]
	if seen == nil {
		return nil, fmt.Errorf("table id %d: %w", e.TableID, errNoTableMap)
	}
	e.Table = seen.ev
	if e.Flags&replication.RowsEventStmtEndFlag != 0 {
		clear(r.stmt)
	}
	if !fastEventType(h.EventType) || e.Version == 0 {
		return r.parseRows(seen, raw)
	}
	*rows = pendingRows{ev: e, data: data, pos: pos, raw: raw, table: seen, dec: r}
	return e, nil
}

// rowsHeader decodes a rows event's header; pos is where its row images
// start.
func (r *rawEvents) rowsHeader(t replication.EventType, data []byte) (e *replication.RowsEvent, pos int, err error) {
	version, _ := rowsVersion(t)
	idSize, err := r.tableIDSize(t)
	if err != nil {
		return nil, 0, err
	}
	short := func() error { return fmt.Errorf("rows event header cut short at byte %d of %d", pos, len(data)) }
	e = &replication.RowsEvent{Version: version}
	if len(data) < idSize+2 {
		return nil, 0, short()
	}
	e.TableID = gomysql.FixedLengthInt(data[:idSize])
	pos = idSize
	e.Flags = binary.LittleEndian.Uint16(data[pos:])
	pos += 2
	if version == 2 {
		if len(data) < pos+2 {
			return nil, 0, short()
		}
		extra := int(binary.LittleEndian.Uint16(data[pos:])) // counts its own two bytes
		if extra < 2 || len(data) < pos+extra {
			return nil, 0, short()
		}
		pos += extra
	}
	if len(data) <= pos {
		return nil, 0, short()
	}
	cols, null, n := gomysql.LengthEncodedInt(data[pos:])
	if null || n == 0 || cols > uint64(len(data))*8 {
		return nil, 0, fmt.Errorf("rows event column count %d does not fit its %d bytes", cols, len(data))
	}
	e.ColumnCount = cols
	pos += n
	bits := int(cols+7) / 8
	for i, bm := range []*[]byte{&e.ColumnBitmap1, &e.ColumnBitmap2} {
		if i == 1 && !twoImages(t) {
			break
		}
		if len(data) < pos+bits {
			return nil, 0, short()
		}
		*bm = data[pos : pos+bits]
		pos += bits
	}
	return e, pos, nil
}

// parseTableMap decodes a table map whole with the parser, which then
// holds it for the rows events handed to it.
func (r *rawEvents) parseTableMap(seen *tableMapSeen) error {
	e, err := r.parse(seen.raw)
	if err != nil {
		return err
	}
	te, ok := e.(*replication.TableMapEvent)
	if !ok {
		return fmt.Errorf("parsed as %T", e)
	}
	seen.ev = te
	return nil
}

// parseRows decodes a rows event of the table map seen whole with the
// parser. The parser decoded every table map in maps and still holds it:
// it is renewed only with maps, and it is given rows events with their
// statement-end flag cleared, where it would forget its table maps (each
// rows event of a table Ferry does not decode itself, or leaves out, would
// then cost a table map decoded again whole).
func (r *rawEvents) parseRows(seen *tableMapSeen, raw []byte) (*replication.RowsEvent, error) {
	if r.maps[seen.id] != seen || r.parser == nil {
		// Forgotten since its statement began (maxTableMaps): rare.
		if err := r.parseTableMap(seen); err != nil {
			return nil, fmt.Errorf("its table map: %w", err)
		}
	}
	idSize, err := r.tableIDSize(replication.EventType(raw[4]))
	if err != nil {
		return nil, err
	}
	at := replication.EventHeaderSize + idSize // the flags, little-endian
	if len(raw) < at+2 {
		return nil, fmt.Errorf("%d bytes", len(raw))
	}
	flags := binary.LittleEndian.Uint16(raw[at:])
	if flags&replication.RowsEventStmtEndFlag != 0 {
		raw = bytes.Clone(raw)
		binary.LittleEndian.PutUint16(raw[at:], flags&^replication.RowsEventStmtEndFlag)
	}
	e, err := r.parse(raw)
	if err != nil {
		return nil, err
	}
	re, ok := e.(*replication.RowsEvent)
	if !ok {
		return nil, fmt.Errorf("parsed as %T", e)
	}
	re.Flags = flags
	return re, nil
}

// parse decodes an event whole as go-mysql's parser would outside raw
// mode. eventFramer verified its checksum already.
func (r *rawEvents) parse(raw []byte) (replication.Event, error) {
	if r.parser == nil { // once per format description, not per event
		p := replication.NewBinlogParser()
		p.SetFlavor(r.flavor)
		p.SetTimestampStringLocation(time.UTC) // TIMESTAMP values in UTC (timestampValue)
		if r.fdeRaw != nil {
			if _, err := p.Parse(r.fdeRaw); err != nil {
				return nil, fmt.Errorf("parse the format description: %w", err)
			}
		}
		r.parser = p
	}
	ev, err := r.parser.Parse(raw)
	if err != nil {
		return nil, err
	}
	return ev.Event, nil
}
