package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry"
)

// emptyCheckpointEvery is how often the position of transactions that touched
// no captured table is handed to the pipeline: often enough that a restart
// does not re-read much, rarely enough to cost nothing on busy servers.
const emptyCheckpointEvery = time.Second

// stream turns binlog events into per-transaction batches. Events are
// handled on one goroutine; mu guards the state a backfill shares with it
// (the window, the read position) and is held while an event is handled.
type stream struct {
	mu      sync.Mutex
	source  string
	cfg     *Config
	log     *slog.Logger
	planner *planner
	gtid    *gtidTracker
	out     chan<- ferry.Batch
	gate    *gate
	// serverID is the server_id of the server read from (Source.serverID).
	serverID *atomic.Uint32

	file      string   // binlog file being read
	committed position // after the last transaction boundary read
	tx        txState

	pendingEmpty  bool // committed advanced without a batch carrying it
	lastEmptySent time.Time
	warned        map[string]bool

	// readPos is where reading stands at the last transaction boundary:
	// committed, or later when events outside transactions followed.
	readPos position
	win     *window  // the backfill chunk being reconciled, if any
	jobs    *jobList // backfills, saved in every checkpoint
	// forceTo routes every change to these sinks (a backfill-only source).
	forceTo []string
	// noCheckpoints: batches carry no checkpoint (a replay).
	noCheckpoints bool
	end           *replayEnd               // where a replay stops; nil streams forever
	progress      atomic.Pointer[position] // a replay's readPos, for progress displays
	status        streamStatus             // position and lag for Source.Status
	// block is where transactions' changes are carved from (see newBuf).
	block []ferry.Change
	// lastTx is how many changes the last transaction handed over held:
	// a transaction that outgrows the block gets room for as many (see
	// growBuf).
	lastTx     int
	quarantine QuarantineStore // rows of quarantined tables; nil: they stop the source

	// pending is the feed's slot of the rows event whose images are still
	// undecoded (see pendingRows); the rest is binrows.go's scratch space.
	pending               *pendingRows
	binVals               []any
	binSpans, binKeySpans []span
	binChanges            []binChange
	// texts holds the text of change ids and decoded values (textArena).
	texts textArena

	// deferring: batches wait in deferred until the connection's next read
	// (flushDeferred) or until they fill a batch_size, instead of going to
	// out one by one (see boundaryConn).
	deferring       bool
	deferred        []ferry.Batch
	deferredChanges int
}

// maxDeferred bounds the batches waiting for a read boundary: beyond it the
// pipeline gains nothing from waiting longer, since its Read merges at most
// batch_size changes anyway.
const maxDeferred = 256

// errReplayEnd ends a replay's stream.
var errReplayEnd = errors.New("replay reached its end")

// replayEnd is where a replay stops: at a binlog position, or before the
// first transaction committed after a time.
type replayEnd struct {
	pos  position
	time time.Time
}

// step handles one event under the stream lock, then moves the read
// position, emits a backfill chunk that became ready, and checks a replay's
// end.
func (s *stream) step(ctx context.Context, ev *replication.BinlogEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := s.readPos
	if err := s.handle(ctx, ev); err != nil {
		return err
	}
	if !s.tx.active {
		if r, ok := ev.Event.(*replication.RotateEvent); ok {
			s.readPos = position{File: string(r.NextLogName), Pos: uint32(r.Position)}
		} else if ev.Header.LogPos > 0 {
			s.readPos = position{File: s.file, Pos: ev.Header.LogPos}
		}
	}
	shown := s.readPos
	shown.GTID = s.committed.GTID // the state at readPos: only non-transaction events follow committed
	s.status.observe(ev, before, shown, s.tx.active)
	if err := s.emitChunkIfReady(ctx); err != nil {
		return err
	}
	if s.end != nil && !s.tx.active {
		p := s.readPos
		s.progress.Store(&p)
	}
	return s.checkEnd()
}

func (s *stream) checkEnd() error {
	e := s.end
	switch {
	case e == nil:
		return nil
	case s.tx.active:
		if !e.time.IsZero() && s.tx.time.After(e.time) {
			return errReplayEnd
		}
		return nil
	case comparePositions(s.readPos, e.pos) >= 0:
		return errReplayEnd
	}
	return nil
}

// checkpoint is the checkpoint for resuming at p, with the backfills'
// progress; nil for a replay.
func (s *stream) checkpoint(p position) ferry.Position {
	if s.noCheckpoints {
		return nil
	}
	saved := s.jobs.saved()
	if saved == nil && len(p.File)+len(p.GTID) > 128 { // long MySQL GTID sets: not worth carving
		return p.encode()
	}
	if saved == nil {
		// Carved from the text arena: one allocation for many
		// transactions' checkpoints instead of one each.
		var buf [256]byte
		return s.texts.bytes(p.appendEncoded(buf[:0]))
	}
	b, _ := json.Marshal(checkpointJSON{position: p, Backfills: saved}) // strings, numbers and valid JSON
	return b
}

// txState is the transaction being assembled.
type txState struct {
	active bool
	// explicit: the transaction ends only at XID, COMMIT or ROLLBACK;
	// otherwise at the end of its first statement (see txboundary.go).
	explicit   bool
	id         string // GTID, else FILE:POS of its first event
	time       time.Time
	ordinal    int // row changes seen so far in the transaction, captured or not
	buf        []ferry.Change
	bufBytes   int // the size of buf's changes (ferry.Change.Size)
	streamed   int // changes already emitted because the transaction outgrew the buffer
	savepoints []savepoint
	bad        *undecodableRows // the first row event that could not be decoded
	// seen: the GTID state already holds this transaction (a MySQL server
	// re-sent it); its changes are dropped (see gtidTracker.beginMySQL).
	seen bool
}

func (s *stream) handle(ctx context.Context, ev *replication.BinlogEvent) error {
	h := ev.Header
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
	case *replication.MariadbGTIDListEvent, *replication.PreviousGTIDsEvent:
		s.gtid.seedFromList(e)
	case *replication.MariadbGTIDEvent:
		s.gtid.beginMaria(ev)
		s.begin(h, s.gtid.current(), time.Unix(int64(h.Timestamp), 0))
		s.tx.explicit = !e.IsStandalone()
	case *replication.GTIDEvent:
		seen := s.gtid.beginMySQL(e)
		t := time.Unix(int64(h.Timestamp), 0)
		if e.OriginalCommitTimestamp > 0 {
			t = time.UnixMicro(int64(e.OriginalCommitTimestamp))
		}
		s.begin(h, s.gtid.current(), t)
		s.tx.seen = seen
	case *replication.QueryEvent:
		return s.query(ctx, h, e)
	case *replication.XIDEvent:
		return s.commit(ctx, h)
	case *replication.RowsEvent:
		return s.rows(ctx, h, e)
	default:
		switch h.EventType {
		case replication.HEARTBEAT_EVENT, replication.HEARTBEAT_LOG_EVENT_V2:
			return s.flushEmpty(ctx, true)
		case replication.TRANSACTION_PAYLOAD_EVENT:
			return errFatal(fmt.Errorf("%w at %s:%d", errCompressedTransaction, s.file, h.LogPos-h.EventSize))
		}
	}
	return nil
}

func (s *stream) begin(h *replication.EventHeader, gtid string, t time.Time) {
	if s.tx.active && len(s.tx.buf) > 0 {
		s.log.Warn("transaction ended without COMMIT or ROLLBACK in the binlog; its changes are dropped", "tx", s.tx.id)
	}
	id := gtid
	if id == "" {
		id = s.file + ":" + strconv.FormatUint(uint64(h.LogPos-h.EventSize), 10)
	}
	clear(s.tx.buf) // dropped changes (see above) must not stay reachable
	buf := s.tx.buf[:0]
	if buf == nil {
		buf = s.newBuf()
	}
	s.tx = txState{active: true, id: id, time: t, buf: buf}
}

func (s *stream) query(ctx context.Context, h *replication.EventHeader, e *replication.QueryEvent) error {
	q := strings.TrimSpace(string(e.Query))
	kind, name := classifyQuery(q)
	if kind == queryStatement {
		if err := s.schemaDDL(ctx, h, e, q); err != nil {
			return err
		}
	}
	switch kind {
	case queryBegin:
		if !s.tx.active { // no GTID event: a server without GTIDs
			s.begin(h, "", time.Unix(int64(h.Timestamp), 0))
		}
		s.tx.explicit = true
		return nil
	case queryCommit: // non-transactional tables end their group with a COMMIT query
		return s.commit(ctx, h)
	case queryRollback:
		s.rollback()
		return nil
	case querySavepoint:
		s.tx.setSavepoint(name)
		return nil
	case queryRollbackTo:
		s.rollbackToSavepoint(name)
		return nil
	case queryXA:
		s.warnOnce("xa", "XA transactions are not supported; their changes are not captured", "statement", truncate(q, 60))
		return nil
	case queryDML:
		s.warnOnce("stmt:"+string(e.Schema), "a statement-based change was written to the binlog and cannot be captured; "+
			"set binlog_format=ROW for every session (SET GLOBAL binlog_format=ROW and in the server config)",
			"schema", string(e.Schema), "statement", truncate(q, 120))
	}
	if s.tx.explicit {
		return nil // logged inside a transaction (CREATE TABLE ... SELECT): it goes on
	}
	// Outside a transaction, DDL and other statements commit on their own.
	if !s.tx.active {
		s.begin(h, "", time.Unix(int64(h.Timestamp), 0))
	}
	if db, table, ok := parseTruncate(q, string(e.Schema)); ok {
		s.truncated(h, db, table)
	}
	return s.commit(ctx, h)
}

// rollbackToSavepoint drops the changes a ROLLBACK TO undid; the server
// logs it (with the undone rows before it) when non-transactional changes
// kept them in the transaction's log.
func (s *stream) rollbackToSavepoint(name string) {
	found, sent := s.tx.rollbackTo(name)
	switch {
	case !found:
		s.log.Warn("ROLLBACK TO a savepoint not seen in this transaction; its changes are kept", "tx", s.tx.id, "savepoint", name)
	case sent > 0:
		s.log.Warn("a transaction rolled back to a savepoint after part of it was streamed; those changes were already sent "+
			"(raise max_tx_buffer above the largest transaction to avoid this)", "tx", s.tx.id, "savepoint", name, "streamed", sent)
	}
}

func firstWord(q string) string {
	if i := strings.IndexAny(q, " \t\r\n("); i >= 0 {
		return q[:i]
	}
	return q
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (s *stream) rows(ctx context.Context, h *replication.EventHeader, e *replication.RowsEvent) error {
	op, step := ferry.OpCreate, 1
	switch rowsOp(h.EventType) {
	case replication.EnumRowsEventTypeUpdate:
		op, step = ferry.OpUpdate, 2
	case replication.EnumRowsEventTypeDelete:
		op = ferry.OpDelete
	case replication.EnumRowsEventTypeInsert:
	default:
		return nil
	}
	if !s.tx.active {
		s.begin(h, "", time.Unix(int64(h.Timestamp), 0))
		s.tx.explicit = true // row events belong to a transaction that ends at XID or COMMIT
	}
	if s.tx.bad != nil || s.tx.seen {
		return nil // bad: the transaction stops the source at its end; seen: delivered before
	}
	s.planner.at = position{File: s.file, Pos: h.LogPos - h.EventSize}
	p, err := s.planner.plan(e.Table)
	if errors.Is(err, errQuarantined) {
		if err := s.goMySQLRows(h, e); err != nil {
			return err
		}
		return s.deadLetterRows(ctx, h, e, op.String(), step, err)
	}
	if err != nil && isFatal(err) { // the event itself lacks what decoding needs
		s.tx.undecodable(s.file, h, s.committed, err)
		return nil // read on to the transaction's end, to name where it ends
	}
	if err != nil { // a failed metadata lookup: read the transaction again
		return fmt.Errorf("decode rows at %s:%d: %w", s.file, h.LogPos-h.EventSize, err)
	}
	if p.included {
		if done, err := s.fastRows(ctx, h, e, p, op, step); done {
			return err
		}
	}
	if err := s.goMySQLRows(h, e); err != nil {
		return err
	}
	for i := 0; i+step <= len(e.Rows); i += step {
		s.tx.ordinal++
		if !p.included {
			continue
		}
		miss := s.absentColumns(p, e, i, step)
		if s.win != nil {
			s.recordChange(p, e.Rows[i:i+step])
		}
		if op == ferry.OpUpdate && p.keyChanged(e.Rows[i], e.Rows[i+1], miss[0], miss[1]) {
			s.appendChange(s.oldKeyDelete(h, p, e.Rows[i], miss[0]))
		}
		if err := s.buffer(ctx, s.change(h, p, op, e.Rows[i:i+step], miss)); err != nil {
			return err
		}
	}
	return nil
}

// buffer adds a row change to the transaction's buffer and, when the
// buffer is at its count or byte bound, streams it ahead of the commit.
func (s *stream) buffer(ctx context.Context, c ferry.Change) error {
	s.appendChange(c)
	if len(s.tx.buf) >= s.cfg.MaxTxBuffer || s.tx.bufBytes >= s.cfg.MaxTxBufferBytes {
		return s.flushPartial(ctx)
	}
	return nil
}

// absentColumns returns, per image of the row change at i, the columns it
// leaves out (nil masks for full images).
func (s *stream) absentColumns(p *tablePlan, e *replication.RowsEvent, i, step int) []absent {
	miss := make([]absent, step)
	for img := range step {
		if i+img < len(e.SkippedColumns) && len(e.SkippedColumns[i+img]) > 0 {
			miss[img] = absentColumns(int(e.ColumnCount), e.SkippedColumns[i+img])
			s.warnOnce("image:"+p.db+"."+p.table, "row images are not FULL (binlog_row_image MINIMAL or NOBLOB in some session); "+
				"before/after carry only the columns the server logged", "table", p.db+"."+p.table)
		}
	}
	return miss
}

func (s *stream) change(h *replication.EventHeader, p *tablePlan, op ferry.Op, rows [][]any, miss []absent) ferry.Change {
	c := s.changeHead(h, p, op)
	switch op {
	case ferry.OpCreate:
		c.After, c.Key = p.row(rows[0], miss[0]), p.key(rows, miss)
	case ferry.OpDelete:
		c.Before, c.Key = p.row(rows[0], miss[0]), p.key(rows, miss)
	case ferry.OpUpdate: // the new key: from the after image where it holds the column
		c.Before, c.After = p.row(rows[0], miss[0]), p.row(rows[1], miss[1])
		c.Key = p.key([][]any{rows[1], rows[0]}, []absent{miss[1], miss[0]})
	}
	return c
}

// changeID is the id of the transaction's current row change: its text
// is carved from the stream's text arena instead of two allocations each.
func (s *stream) changeID() string {
	var buf [64]byte
	b := append(append(buf[:0], s.tx.id...), '#')
	return s.texts.text(strconv.AppendInt(b, int64(s.tx.ordinal), 10))
}

// changeHead is a change of the current transaction without its rows.
func (s *stream) changeHead(h *replication.EventHeader, p *tablePlan, op ferry.Op) ferry.Change {
	return ferry.Change{
		ID:     s.changeID(),
		Op:     op,
		Source: s.source,
		DB:     p.db,
		Table:  p.table,
		Time:   s.tx.time,
		Binlog: ferry.BinlogCoords{File: s.file, Pos: uint64(h.LogPos - h.EventSize), GTID: s.gtid.current(),
			ServerID: h.ServerID, TxID: s.tx.id, TxOrder: s.tx.ordinal},
		To: s.forceTo,
	}
}

// oldKeyDelete is the delete event an UPDATE that changes the primary key
// gives its old key, ahead of the update itself (whose key is the new one):
// a consumer that keeps rows by key (partitionkey) learns that the old key
// is gone, in the old key's partition. Its id is the update's with
// "/old-key" appended, so replays give it the same id.
func (s *stream) oldKeyDelete(h *replication.EventHeader, p *tablePlan, before []any, miss absent) ferry.Change {
	c := s.change(h, p, ferry.OpDelete, [][]any{before}, []absent{miss})
	c.ID += "/old-key"
	return c
}

// flushPartial emits the buffered part of a transaction too big to hold;
// the batch carries no checkpoint since it ends mid-transaction.
func (s *stream) flushPartial(ctx context.Context) error {
	if s.tx.streamed == 0 {
		s.log.Info("streaming a large transaction before its commit", "tx", s.tx.id, "buffered", len(s.tx.buf))
	}
	s.tx.streamed += len(s.tx.buf)
	b := ferry.Batch{Changes: s.handOver(s.tx.buf, s.tx.bufBytes), Size: int64(s.tx.bufBytes)}
	s.tx.buf, s.tx.bufBytes = nil, 0
	return s.emit(ctx, b)
}

func (s *stream) commit(ctx context.Context, h *replication.EventHeader) error {
	if bad := s.tx.bad; bad != nil {
		return errFatal(bad.explain(s.source, s.tx.id, s.tx.streamed, position{File: s.file, Pos: h.LogPos}))
	}
	if s.tx.seen {
		s.warnOnce("seen", "the server sent a transaction the GTID state already contains; it is skipped (further ones at debug level)", "gtid", s.tx.id)
		s.log.Debug("skipped a transaction the GTID state already contains", "gtid", s.tx.id)
		s.tx.buf, s.tx.bufBytes = s.tx.buf[:0], 0
	}
	s.gtid.commit()
	s.committed = position{File: s.file, Pos: h.LogPos, GTID: s.gtid.state(), ServerID: s.serverID.Load()}
	changes, size, streamed := s.handOver(s.tx.buf, s.tx.bufBytes), s.tx.bufBytes, s.tx.streamed
	s.tx = txState{}
	if len(changes) == 0 && streamed == 0 {
		s.pendingEmpty = true
		return s.flushEmpty(ctx, false)
	}
	s.pendingEmpty = false
	return s.emit(ctx, ferry.Batch{Changes: changes, Checkpoint: s.checkpoint(s.committed), Size: int64(size)})
}

// flushEmpty hands over the position of transactions without captured
// changes, at most every emptyCheckpointEvery unless forced (heartbeats).
func (s *stream) flushEmpty(ctx context.Context, force bool) error {
	if !s.pendingEmpty || (!force && time.Since(s.lastEmptySent) < emptyCheckpointEvery) {
		return nil
	}
	s.pendingEmpty = false
	s.lastEmptySent = time.Now()
	return s.emit(ctx, ferry.Batch{Checkpoint: s.checkpoint(s.committed)})
}

func (s *stream) rollback() {
	if s.tx.streamed > 0 {
		s.log.Warn("a transaction was rolled back after part of it was streamed; those changes were already sent "+
			"(raise max_tx_buffer above the largest transaction to avoid this)", "tx", s.tx.id, "streamed", s.tx.streamed)
	}
	s.gtid.abort()
	clear(s.tx.buf) // the buffer is reused: do not keep the rows undone
	s.tx = txState{buf: s.tx.buf[:0]}
}

// restart forgets a transaction cut off by a lost connection; reading
// resumes at s.committed, so it is read again from its start with the same
// ids.
func (s *stream) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gtid.abort()
	s.tx = txState{}
	s.readPos = s.committed
}

// emit hands b to the pipeline, at once or, when deferring, at the
// connection's next read boundary.
func (s *stream) emit(ctx context.Context, b ferry.Batch) error {
	if len(b.Changes) == 0 && b.Checkpoint == nil {
		return nil
	}
	if !s.deferring {
		return s.send(ctx, b)
	}
	s.deferred = append(s.deferred, b)
	s.deferredChanges += len(b.Changes)
	if len(s.deferred) < maxDeferred && s.deferredChanges < s.cfg.BatchSize {
		return nil
	}
	_, err := s.sendDeferred(ctx)
	return err
}

// flushDeferred sends the deferred batches and returns how many it sent.
func (s *stream) flushDeferred(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendDeferred(ctx)
}

// sendDeferred sends the deferred batches in order; called with s.mu held.
// Those it could not send (ctx ended) are dropped like an unsent emit:
// the checkpoint has not passed them, so they are read again.
func (s *stream) sendDeferred(ctx context.Context) (int, error) {
	n := len(s.deferred)
	var err error
	for i, b := range s.deferred {
		if err = s.send(ctx, b); err != nil {
			n = i
			break
		}
	}
	clear(s.deferred) // do not keep the changes sent
	s.deferred, s.deferredChanges = s.deferred[:0], 0
	return n, err
}

func (s *stream) send(ctx context.Context, b ferry.Batch) error {
	if err := s.gate.acquire(ctx, b); err != nil {
		return err
	}
	select {
	case s.out <- b:
		return nil
	case <-ctx.Done():
		s.gate.release(b)
		return ctx.Err()
	}
}

func (s *stream) warnOnce(key, msg string, args ...any) {
	if s.warned[key] {
		return
	}
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	s.warned[key] = true
	s.log.Warn(msg, args...)
}

// changeBlockSize is how many changes one allocation holds for the
// buffers of small transactions.
const changeBlockSize = 64

// newBuf is an empty buffer for a transaction's changes in the unused rest
// of the current block: single-row transactions then cost one allocation
// per 64 instead of one each (issue 18). A transaction outgrowing it is
// moved out by append as usual.
func (s *stream) newBuf() []ferry.Change {
	if cap(s.block) == 0 {
		s.block = make([]ferry.Change, 0, changeBlockSize)
	}
	return s.block[:0]
}

// blockLarge is the size (ferry.Change.Size) of a transaction's changes
// above which they are moved out of the block when handed over: a block
// stays reachable while any transaction carved from it is, and so do the
// rows of all of them, which for large rows would be far beyond
// max_tx_buffer_bytes and the pipeline's max_in_flight_bytes.
const blockLarge = 16 << 10

// maxGuess is the most changes a transaction's buffer gets room for
// ahead of them (see growBuf; ~1.5 MB).
const maxGuess = 4096

// growBuf returns buf, full, with room for as many changes as the last
// transaction held (at most maxGuess), or as append would grow it if it
// holds that many already. Transactions of a stream tend to be alike: a
// 1000-row transaction grown by append from the block allocated room for
// ~3,000 changes of 360 bytes on the way and handed over a quarter more
// than it held; a bulk load spent ~30 % of its allocated bytes there
// (issue 18). A guess that was too large is corrected by handOver.
func (s *stream) growBuf(buf []ferry.Change) []ferry.Change {
	if guess := min(s.lastTx, maxGuess); guess > len(buf) {
		return slices.Grow(buf, guess-len(buf))
	}
	return buf
}

// handOver returns buf, whose changes hold size bytes, as emitted:
// clipped, so that appending to the batch (Read merges batches) copies
// instead of writing into the block, and moves the block past it when it
// was carved from it (large changes are copied out of it then). A buffer
// with more than a quarter of its room unused (growBuf guessed too much,
// or append grew it) is copied to one of its length: a handed-over batch
// stays in memory until delivered.
func (s *stream) handOver(buf []ferry.Change, size int) []ferry.Change {
	n := len(buf)
	if n > 0 {
		s.lastTx = n
	}
	switch {
	case cap(s.block) == 0:
	case n > 0 && &buf[:1][0] == &s.block[:1][0]:
		s.block = s.block[n:n]
		if size > blockLarge {
			own := append(make([]ferry.Change, 0, n), buf...)
			clear(buf)
			return own
		}
		return buf[:n:n]
	case s.block[:1][0].ID != "":
		// A transaction that outgrew the block left its first changes
		// in it (every change has an id); nothing handed over is there.
		clear(s.block[:cap(s.block)])
	}
	if n > changeBlockSize && cap(buf)-n > n/4 {
		return append(make([]ferry.Change, 0, n), buf...)
	}
	return buf[:n:n]
}

// appendChange adds c to the transaction's buffer, grown by growBuf, and
// its size to bufBytes: every change buffered goes through here, so the
// sum handed over as Batch.Size is the buffer's (an old key's delete and a
// TRUNCATE bypassed it once and went uncounted).
func (s *stream) appendChange(c ferry.Change) {
	if len(s.tx.buf) == cap(s.tx.buf) {
		s.tx.buf = s.growBuf(s.tx.buf)
	}
	s.tx.buf = append(s.tx.buf, c)
	s.tx.bufBytes += c.Size()
}
