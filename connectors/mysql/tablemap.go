package mysql

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-mysql-org/go-mysql/replication"
)

// tableMaps spares go-mysql the decoding of a table map's optional
// metadata (column names, signedness, charsets, enum and set values, key)
// when the event is byte for byte the last one seen for its table id: every
// transaction logs its tables' maps again, and with binlog_row_metadata=FULL
// decoding them cost ~3 allocations per column and 7 % of the CPU of
// single-row transactions (issue 18). go-mysql calls skipOptionalMeta (the
// syncer's TableMapOptionalMetaDecodeFunc) instead of decoding, and the feed
// completes the event with complete before anything reads it: from the
// table id's last event when the bytes are the same, else by decoding it
// whole with a parser of its own. The rows events that follow see the
// completed event, which go-mysql's parser keeps by pointer.
type tableMaps struct {
	flavor string
	// fde is the connection's FORMAT_DESCRIPTION event as read; crc: its
	// events end with a CRC32 checksum, which is not part of what they say.
	fde []byte
	crc bool
	// parser decodes table maps whole; it has read fde (nil: not yet).
	parser *replication.BinlogParser
	// skipped: go-mysql left the last table map's optional metadata to us.
	skipped bool
	byID    map[uint64]tableMapSeen
}

// tableMapSeen is the last table map of a table id: its body without
// header and checksum, and the event decoded whole.
type tableMapSeen struct {
	body []byte
	ev   *replication.TableMapEvent
}

// maxTableMaps bounds the table ids remembered; past it they are forgotten
// and decoded again (table ids are renewed by DDL and FLUSH TABLES).
const maxTableMaps = 4096

// skipOptionalMeta is the syncer's TableMapOptionalMetaDecodeFunc.
func (t *tableMaps) skipOptionalMeta([]byte) error {
	t.skipped = true
	return nil
}

// observe completes ev if it is a table map go-mysql left incomplete, and
// notes the connection's format description.
func (t *tableMaps) observe(ev *replication.BinlogEvent) error {
	switch e := ev.Event.(type) {
	case *replication.FormatDescriptionEvent:
		t.fde, t.crc = ev.RawData, e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
		t.parser = nil
		clear(t.byID) // a new file or server: its table ids are read afresh
	case *replication.TableMapEvent:
		if !t.skipped {
			return nil
		}
		t.skipped = false
		return t.complete(ev, e)
	}
	return nil
}

// complete fills in te's optional metadata.
func (t *tableMaps) complete(ev *replication.BinlogEvent, te *replication.TableMapEvent) error {
	end := len(ev.RawData)
	if t.crc {
		end -= replication.BinlogChecksumLength
	}
	if end < replication.EventHeaderSize {
		return fmt.Errorf("table map event at log position %d: %d bytes", ev.Header.LogPos, len(ev.RawData))
	}
	body := ev.RawData[replication.EventHeaderSize:end]
	if seen, ok := t.byID[te.TableID]; ok && bytes.Equal(seen.body, body) {
		*te = *seen.ev // the same bytes decode to the same event
		return nil
	}
	full, err := t.decode(ev.RawData)
	if err != nil {
		return fmt.Errorf("decode table map event at log position %d: %w", ev.Header.LogPos, err)
	}
	*te = *full
	if t.byID == nil || len(t.byID) >= maxTableMaps {
		// The parser keeps every table map it parsed: forget those too.
		t.byID, t.parser = make(map[uint64]tableMapSeen), nil
	}
	t.byID[te.TableID] = tableMapSeen{body: body, ev: full}
	return nil
}

// decode decodes a table map event whole, as go-mysql's syncer would
// without skipOptionalMeta. Checksums were verified by the syncer's parser.
func (t *tableMaps) decode(raw []byte) (*replication.TableMapEvent, error) {
	if t.fde == nil {
		return nil, errors.New("no format description event before it")
	}
	if t.parser == nil { // once per format description, not per table map
		p := replication.NewBinlogParser()
		p.SetFlavor(t.flavor)
		if _, err := p.Parse(t.fde); err != nil {
			return nil, fmt.Errorf("parse the format description: %w", err)
		}
		t.parser = p
	}
	ev, err := t.parser.Parse(raw)
	if err != nil {
		return nil, err
	}
	full, ok := ev.Event.(*replication.TableMapEvent)
	if !ok {
		return nil, fmt.Errorf("parsed as %T", ev.Event)
	}
	return full, nil
}
