package mysql

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/go-mysql-org/go-mysql/replication"
)

// binlogConn is one binlog connection: the dump reading it and the feed its
// events go to.
type binlogConn struct {
	dump *dumpConn
	feed *feed
}

// feed hands every binlog event to the stream on the dump's reading
// goroutine: no channel hand-off and goroutine wake-up per event between
// the reader and the stream, which cost more CPU than Ferry's own decoding
// of single-row transactions (issue 18).
// Until the pump arms it, the feed only notes that the server answered, so
// startStream can check the dump was accepted before Open returns.
type feed struct {
	events atomic.Uint64 // events received, for the pump's watchdog
	first  chan struct{} // closed at the first event
	armed  chan struct{} // closed by arm
	quit   chan struct{} // closed by stop: an unarmed feed gives up
	// ended receives the error that ended the dump's reading, once; err is
	// then the stream's own error, if it was one.
	ended chan error

	// Set by arm before armed is closed; used only on the reading goroutine.
	ctx     context.Context
	st      *stream
	running bool
	err     error
	// frame splits the dump's packets into events, raw decodes them; rows
	// is the rows event raw decoded last, its images undecoded.
	frame eventFramer
	raw   rawEvents
	rows  pendingRows
}

// errFeedStopped ends a connection given up before the pump took it.
var errFeedStopped = errors.New("binlog connection given up before streaming")

func newFeed(flavor string) *feed {
	return &feed{first: make(chan struct{}), armed: make(chan struct{}), quit: make(chan struct{}), ended: make(chan error, 1),
		raw: rawEvents{flavor: flavor}}
}

// arm starts handing events to st; ctx bounds the stream's hand-off to the
// pipeline.
func (f *feed) arm(ctx context.Context, st *stream) {
	f.ctx, f.st = ctx, st
	st.pending = &f.rows
	st.deferring = true // the feed's connection is a boundaryConn: it calls atReadBoundary
	close(f.armed)
}

// stop releases a reading goroutine waiting for arm; call it before closing
// the dump, which waits for that goroutine.
func (f *feed) stop() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
}

// HandleEvent is called for each event, in binlog order, on the dump's
// reading goroutine. An error ends the connection; the pump then reads it
// from f.err.
func (f *feed) HandleEvent(ev *replication.BinlogEvent) (err error) {
	if f.events.Add(1) == 1 {
		close(f.first)
	}
	if !f.running {
		select {
		case <-f.armed:
			f.running = true
		case <-f.quit:
			return errFeedStopped
		}
	}
	// A panic would end the process, or reconnect and hit the event
	// again: stop the source instead.
	defer func() {
		if r := recover(); r != nil {
			f.err = errFatal(fmt.Errorf("handle binlog event %s at log position %d: panic: %v", ev.Header.EventType, ev.Header.LogPos, r))
			err = f.err
		}
	}()
	if err := f.raw.decode(ev, &f.rows); err != nil {
		f.err = err
		return err
	}
	if err := f.st.step(f.ctx, ev); err != nil {
		// What was committed before the event goes out as it did before
		// the deferral (a replay's last transactions, the batches a fatal
		// error lets the pipeline deliver first).
		_, _ = f.st.flushDeferred(f.ctx)
		f.err = err
		return err
	}
	return nil
}

// atReadBoundary hands the transactions committed since the last read of
// the connection to the pipeline, and reports whether there were any. It
// runs on the reading goroutine, before each read of the socket.
func (f *feed) atReadBoundary() (bool, error) {
	if !f.running || f.err != nil {
		return false, nil
	}
	n, err := f.st.flushDeferred(f.ctx)
	if err != nil {
		f.err = err
		return false, err
	}
	return n > 0, nil
}

// end waits for the connection to end and returns why: the stream's error
// as it was, or the connection's explained by explain.
func (f *feed) end(ctx context.Context, explain func(error) error) error {
	select {
	case err := <-f.ended:
		if f.err != nil { // written before the reader reported the end on ended
			return f.err
		}
		return explain(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}
