package mysql

import (
	"context"
	"slices"

	"github.com/ferry-cdc/ferry"
)

// window reconciles one backfill chunk with the binlog, the watermark method
// of Netflix's DBLog (which Debezium's incremental snapshots also use), done
// without writing watermarks to the source:
//
//  1. The window opens at the stream's read position S. From then on the
//     stream records the key of every change of the table it reads.
//  2. The chunk is read in a consistent snapshot at binlog position P. If
//     P < S the stream already passed changes the snapshot does not hold and
//     the chunk is read again.
//  3. Once the stream has read up to P and stands at a transaction boundary,
//     the chunk is emitted minus every row whose key was recorded: the stream
//     carries the newer state of those rows, in order. Rows not recorded did
//     not change between P and now, so their snapshot state is current.
//
// So a backfilled row never overtakes a streamed change of the same key, and
// the source is neither locked nor written to.
type window struct {
	db, table string
	keyCols   []string
	primary   bool
	start     position
	seen      map[string]struct{}
	pending   *chunk
	job       *job
	emitted   chan struct{} // closed once the chunk was handed to the pipeline
	keyIdx    map[*tablePlan][]int
}

// record notes the keys of a change of the window's table: both images of an
// update, since an update may change the key.
func (w *window) record(p *tablePlan, rows [][]any) {
	for _, raw := range rows {
		w.seen[ferry.KeyText(w.keyOf(p, raw))] = struct{}{}
	}
}

func (w *window) keyOf(p *tablePlan, raw []any) ferry.Row {
	if w.primary {
		return p.key([][]any{raw}, []absent{nil})
	}
	idx, ok := w.keyIdx[p]
	if !ok {
		for _, k := range w.keyCols {
			idx = append(idx, slices.IndexFunc(p.names, func(n []byte) bool { return string(n) == k }))
		}
		w.keyIdx[p] = idx
	}
	vals := make([]any, len(idx))
	for i, src := range idx {
		if src >= 0 && src < len(raw) && raw[src] != nil {
			vals[i] = p.allDecode[src](raw[src])
		}
	}
	return ferry.Row{Columns: w.keyCols, Values: vals}
}

// openWindow starts recording the keys of p's table; the caller reads the
// chunk next.
func (s *stream) openWindow(p *snapshotPlan, j *job) *window {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.win = &window{db: p.db, table: p.table, keyCols: p.keyCols, primary: p.primary, start: s.readPos,
		seen: map[string]struct{}{}, job: j, emitted: make(chan struct{}), keyIdx: map[*tablePlan][]int{}}
	return s.win
}

// closeWindow abandons a window whose chunk will not be delivered.
func (s *stream) closeWindow(w *window) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.win == w {
		s.win = nil
	}
}

// deliverChunk hands a read chunk to its window; it is emitted now if the
// stream already stands at or after its position, else by the stream
// goroutine when it gets there.
func (s *stream) deliverChunk(ctx context.Context, w *window, c *chunk) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.pending = c
	return s.emitChunkIfReady(ctx)
}

// recordChange is called by the stream for every captured row change.
func (s *stream) recordChange(p *tablePlan, rows [][]any) {
	if w := s.win; w != nil && w.db == p.db && w.table == p.table {
		w.record(p, rows)
	}
}

// emitChunkIfReady emits the pending chunk when the stream has read up to
// its position and no transaction is open. Called with s.mu held.
func (s *stream) emitChunkIfReady(ctx context.Context) error {
	w := s.win
	if w == nil || w.pending == nil || s.tx.active || comparePositions(s.readPos, w.pending.at) < 0 {
		return nil
	}
	c := w.pending
	changes := make([]ferry.Change, 0, len(c.rows))
	for _, r := range c.rows {
		if _, newer := w.seen[r.keyText()]; newer {
			continue
		}
		changes = append(changes, ferry.Change{
			ID: r.id,
			Op: ferry.OpSnapshot, Source: s.source, DB: w.db, Table: w.table,
			Key: r.key, After: r.after, Time: c.readAt,
			Binlog: ferry.BinlogCoords{File: c.at.File, Pos: uint64(c.at.Pos)},
			To:     w.job.To,
		})
	}
	s.win = nil
	s.jobs.chunkEmitted(w.job, c, len(changes))
	close(w.emitted)
	if err := s.emit(ctx, ferry.Batch{Changes: changes, Checkpoint: s.checkpoint(s.committed)}); err != nil {
		return err
	}
	// At once, after the transactions deferred before it: a backfill's
	// goroutine may emit the chunk while the connection waits for events.
	_, err := s.sendDeferred(ctx)
	return err
}
