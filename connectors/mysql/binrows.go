package mysql

import (
	"context"
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// pendingRows is a rows event whose header rawEvents decoded and whose row
// images are left for the stream: the feed hands the event to the stream
// right after, on the same goroutine, so one slot holds it. data is the
// event's body and raw the whole event, both in its own packet, which
// go-mysql never reuses; dec hands raw to go-mysql, after its table map,
// for the rows the stream does not decode itself.
type pendingRows struct {
	ev    *replication.RowsEvent
	data  []byte
	pos   int // where the row images start
	raw   []byte
	table *tableMapSeen
	dec   *rawEvents
}

// goMySQLRows has go-mysql decode e's row images into e.Rows if they were
// left undecoded; events not read through a feed come decoded.
func (s *stream) goMySQLRows(h *replication.EventHeader, e *replication.RowsEvent) error {
	if s.pending == nil || s.pending.ev != e {
		if e.Rows == nil { // go-mysql's decoding always leaves a non-nil slice
			// Never read as zero rows: that would drop the event's changes.
			return errFatal(fmt.Errorf("rows event at %s:%d was left undecoded (not the event go-mysql parsed last)", s.file, h.LogPos-h.EventSize))
		}
		return nil
	}
	p := *s.pending
	*s.pending = pendingRows{}
	whole, err := p.dec.parseRows(p.table, p.raw)
	if err != nil {
		return fmt.Errorf("decode rows at %s:%d: %w", s.file, h.LogPos-h.EventSize, err)
	}
	*e = *whole // the same header, with every row decoded by go-mysql
	return nil
}

// binChange is one row change decoded from the event's bytes.
type binChange struct {
	before, after, key ferry.Row
	// oldKey is set for an UPDATE that changes the primary key: the key
	// and row of the delete that goes ahead of it (oldKeyDelete).
	oldKey, oldRow ferry.Row
}

// fastRows decodes e's row images itself (see bincol.go) and buffers their
// changes; false when the event is go-mysql's to decode: a table with a
// column type Ferry does not decode, images that are not FULL, compressed
// or partial events, a backfill window that wants go-mysql's raw values,
// or a value that did not decode (go-mysql then reports the error).
func (s *stream) fastRows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent, p *tablePlan, op ferry.Op, step int) (bool, error) {
	if s.pending == nil || s.pending.ev != e || p.bin == nil || s.win != nil || !fastEventType(h.EventType) ||
		!fullBitmap(e.ColumnBitmap1, len(p.bin)) || (step == 2 && !fullBitmap(e.ColumnBitmap2, len(p.bin))) ||
		int(e.ColumnCount) != len(p.bin) {
		return false, nil
	}
	changes, err := s.decodeImages(p, op, step)
	if err != nil {
		return false, nil
	}
	*s.pending = pendingRows{}
	defer func() { clear(changes); s.binChanges = changes[:0] }()
	for _, c := range changes {
		s.tx.ordinal++
		if c.oldKey.Values != nil {
			del := s.changeHead(h, p, ferry.OpDelete)
			del.Before, del.Key = c.oldRow, c.oldKey
			del.ID += "/old-key"
			s.appendChange(del)
		}
		ch := s.changeHead(h, p, op)
		ch.Before, ch.After, ch.Key = c.before, c.after, c.key
		if err := s.buffer(ctx, ch); err != nil {
			return true, err
		}
	}
	return true, nil
}

func fastEventType(t replication.EventType) bool {
	switch t {
	case replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		return false
	}
	return true
}

// fullBitmap reports whether an image's column bitmap holds all n columns.
func fullBitmap(bm []byte, n int) bool {
	if len(bm) < (n+7)/8 {
		return false
	}
	for i := range n {
		if bm[i>>3]&(1<<(i&7)) == 0 {
			return false
		}
	}
	return true
}

// span is where a column's value lies in the event; start < 0 for NULL.
type span struct{ start, end int }

// decodeImages decodes every row change of the pending event, all before
// any is buffered, so that a value that does not decode leaves nothing
// half done.
func (s *stream) decodeImages(p *tablePlan, op ferry.Op, step int) ([]binChange, error) {
	data, pos := s.pending.data, s.pending.pos
	n := len(p.bin)
	if cap(s.binVals) < n {
		s.binVals, s.binSpans, s.binKeySpans = make([]any, n), make([]span, n), make([]span, n)
	}
	vals, spans, before := s.binVals[:n], s.binSpans[:n], s.binKeySpans[:n]
	defer clear(vals)
	changes := s.binChanges[:0]
	for pos < len(data) {
		var c binChange
		var err error
		if pos, err = decodeImage(p, data, pos, vals, spans, &s.texts); err != nil {
			return changes, err
		}
		row, key := p.binRow(vals)
		switch op {
		case ferry.OpCreate:
			c.after, c.key = row, key
		case ferry.OpDelete:
			c.before, c.key = row, key
		case ferry.OpUpdate:
			copy(before, spans)
			if pos, err = decodeImage(p, data, pos, vals, spans, &s.texts); err != nil {
				return changes, err
			}
			c.before = row
			c.after, c.key = p.binRow(vals)
			if p.binKeyChanged(data, before, spans) {
				c.oldKey, c.oldRow = key, ferry.Row{Columns: row.Columns, Values: append([]any(nil), row.Values...)}
			}
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// decodeImage decodes the full row image at pos into vals (by column
// index) and where each value lies into spans; it returns the image's end.
func decodeImage(p *tablePlan, data []byte, pos int, vals []any, spans []span, a *textArena) (int, error) {
	nulls := (len(p.bin) + 7) / 8
	if len(data)-pos < nulls {
		return 0, errBinValue
	}
	bm := data[pos : pos+nulls]
	pos += nulls
	for i := range p.bin {
		if bm[i>>3]&(1<<(i&7)) != 0 {
			vals[i], spans[i] = nil, span{-1, -1}
			continue
		}
		v, n, err := p.bin[i].decode(data[pos:], a)
		if err != nil {
			return 0, err
		}
		vals[i], spans[i] = v, span{pos, pos + n}
		pos += n
	}
	return pos, nil
}

// binRow is row and key for a decoded full image, their values in one
// allocation (they are kept and dropped together, by the same change).
func (p *tablePlan) binRow(vals []any) (row, key ferry.Row) {
	n := len(p.srcIdx)
	out := make([]any, n+len(p.keyIdx))
	for i, src := range p.srcIdx {
		out[i] = vals[src]
	}
	row = ferry.Row{Columns: p.columns, Values: out[:n:n]}
	if len(p.keyIdx) == 0 {
		return row, ferry.Row{}
	}
	for i, src := range p.keyIdx {
		out[n+i] = vals[src]
	}
	return row, ferry.Row{Columns: p.keyColumns, Values: out[n:]}
}

// binKeyChanged is keyChanged for two decoded full images.
func (p *tablePlan) binKeyChanged(data []byte, before, after []span) bool {
	for _, i := range p.keyIdx {
		b, a := before[i], after[i]
		if (b.start < 0) != (a.start < 0) {
			return true
		}
		if b.start >= 0 && !keyBytesEqual(&p.bin[i], data[b.start:b.end], data[a.start:a.end]) {
			return true
		}
	}
	return false
}
