package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/go-mysql-org/go-mysql/replication"
)

// dumpBlock is the size of the blocks a binlog dump is read into, and
// minDumpRead the least room a read of the socket is given: with less left
// in its block, the next read starts a new one.
const (
	dumpBlock   = 128 << 10
	minDumpRead = 8 << 10
	// maxPayload is the largest packet payload; a longer one continues in
	// the packets that follow.
	maxPayload = 1<<24 - 1
)

var (
	// errPacketSequence: a packet's sequence number is not the next one,
	// so bytes of the dump were lost or the stream is not a dump.
	errPacketSequence = errors.New("packet out of sequence")
	// errChecksum: an event's CRC32 is not the one of its bytes.
	errChecksum = errors.New("binlog event checksum mismatch")
)

// packetReader reads the packets of a binlog dump straight from the
// connection into blocks it never writes again, and returns each packet as
// a slice of its block. go-mysql's reader copied every packet three times
// after the socket (its buffered reader, a copy buffer, a pooled buffer)
// and allocated it once more (issue 18); here the socket's bytes are
// copied once, and allocated once per block. What is kept past its event's
// handling is copied out of the block (rows events by eventFramer, table
// maps and format descriptions by rawEvents), so a block is garbage once
// its events are handled; it is never reused all the same, so that a
// decoder's result pointing into it (go-mysql's decoders alias their
// input) can never see it change.
type packetReader struct {
	conn  io.Reader
	seq   uint8
	buf   []byte // the current block: buf[r:w] is read and not yet returned
	r, w  int
	block int // dumpBlock; a test's smaller size
}

// packet returns the next packet's payload; it is valid for good.
func (p *packetReader) packet() ([]byte, error) {
	length, err := p.header()
	if err != nil {
		return nil, err
	}
	body, err := p.take(length)
	if err != nil || length < maxPayload {
		return body, err
	}
	// A payload of maxPayload bytes or more: the rest follows in packets of
	// its own, joined here (events over 16 MiB: rare).
	whole := bytes.Clone(body)
	for length == maxPayload {
		if length, err = p.header(); err != nil {
			return nil, err
		}
		part, err := p.take(length)
		if err != nil {
			return nil, err
		}
		whole = append(whole, part...)
	}
	return whole, nil
}

// header reads a packet header and returns its payload length.
func (p *packetReader) header() (int, error) {
	h, err := p.take(4)
	if err != nil {
		return 0, err
	}
	if h[3] != p.seq {
		return 0, fmt.Errorf("%w: sequence %d, want %d", errPacketSequence, h[3], p.seq)
	}
	p.seq++
	return int(h[0]) | int(h[1])<<8 | int(h[2])<<16, nil
}

// take returns the next n bytes, reading the connection until it has them.
func (p *packetReader) take(n int) ([]byte, error) {
	for p.w-p.r < n {
		if len(p.buf)-p.r < n || len(p.buf)-p.w < minDumpRead {
			p.renew(n)
		}
		m, err := p.conn.Read(p.buf[p.w:])
		p.w += m
		if err != nil && p.w-p.r < n {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // mid-stream: the server never ends a dump cleanly
			}
			return nil, err
		}
	}
	b := p.buf[p.r : p.r+n : p.r+n] // capped: an append to it must not write into the block
	p.r += n
	return b, nil
}

// renew starts a new block big enough for n bytes and a read, carrying
// over the bytes read and not yet returned.
func (p *packetReader) renew(n int) {
	size := p.block
	if size == 0 {
		size = dumpBlock
	}
	size = max(size, n+minDumpRead)
	buf := make([]byte, size)
	p.w = copy(buf, p.buf[p.r:p.w])
	p.buf, p.r = buf, 0
}

// eventFramer turns a dump's event packets into binlog events, as go-mysql's
// parser does in raw mode: it checks each event's size and, after a format
// description announcing CRC32, its checksum, and decodes the format
// descriptions and rotations. The other events are handed on as a
// GenericEvent of their body, for rawEvents to decode. The event, its
// header and that GenericEvent are the framer's own, overwritten by the
// next event: the stream reads each event before the next one is framed,
// and keeps nothing of it but copies (and row values, which point into the
// bytes, not the event).
type eventFramer struct {
	crc     bool // the last format description announced CRC32 checksums
	ev      replication.BinlogEvent
	header  replication.EventHeader
	generic replication.GenericEvent
}

// frame decodes the event raw (a packet without its OK byte).
func (f *eventFramer) frame(raw []byte) (*replication.BinlogEvent, error) {
	h := &f.header
	if err := h.Decode(raw); err != nil {
		return nil, fmt.Errorf("binlog event header: %w", err)
	}
	if int(h.EventSize) != len(raw) {
		return nil, fmt.Errorf("binlog event %s at log position %d: its header says %d bytes, its packet holds %d", h.EventType, h.LogPos, h.EventSize, len(raw))
	}
	if _, rows := rowsVersion(h.EventType); rows {
		// Row values point into their event's bytes (binrows.go) and live
		// as long as their change is in flight: the event gets bytes of
		// its own, as each packet had from go-mysql. In the block, one
		// small change would keep all 128 KiB read with it alive, and a
		// table captured among busy excluded ones, behind a slow sink,
		// would hold a block per change.
		raw = bytes.Clone(raw)
	}
	f.ev = replication.BinlogEvent{RawData: raw, Header: h}
	body := raw[replication.EventHeaderSize:]
	if h.EventType == replication.FORMAT_DESCRIPTION_EVENT {
		raw = bytes.Clone(raw) // kept for the connection (rawEvents.fdeRaw): not a block's slice
		fde := &replication.FormatDescriptionEvent{}
		if err := decodeGuarded(fde, raw[replication.EventHeaderSize:]); err != nil {
			return nil, fmt.Errorf("decode the format description event at log position %d: %w", h.LogPos, err)
		}
		f.crc = fde.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
		f.ev.RawData, f.ev.Event = raw, fde
		return &f.ev, nil
	}
	if f.crc {
		if len(body) < replication.BinlogChecksumLength {
			return nil, fmt.Errorf("binlog event %s at log position %d: %d bytes, too short for its checksum", h.EventType, h.LogPos, len(raw))
		}
		end := len(raw) - replication.BinlogChecksumLength
		if crc32.ChecksumIEEE(raw[:end]) != binary.LittleEndian.Uint32(raw[end:]) {
			return nil, fmt.Errorf("binlog event %s at log position %d: %w", h.EventType, h.LogPos, errChecksum)
		}
		body = body[:len(body)-replication.BinlogChecksumLength]
	}
	if h.EventType == replication.ROTATE_EVENT {
		e := &replication.RotateEvent{}
		if err := decodeGuarded(e, body); err != nil {
			return nil, fmt.Errorf("decode the rotate event at log position %d: %w", h.LogPos, err)
		}
		f.ev.Event = e
		return &f.ev, nil
	}
	f.generic.Data = body
	f.ev.Event = &f.generic
	return &f.ev, nil
}

// decodeGuarded decodes an event's body with go-mysql's decoder, which
// indexes its input unchecked: a malformed event is an error, not a panic.
func decodeGuarded(e replication.Event, body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%d bytes: %v", len(body), p)
		}
	}()
	return e.Decode(body)
}
