package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

// decodeCeiling reads the loaded binlog from start with go-mysql's
// BinlogSyncer alone, decoding every row event and doing nothing with the
// rows: what any go-mysql based tool reading this binlog cannot beat. It
// returns rows/s over rows row changes of bench.orders. With synchronous the
// events are handled on go-mysql's reading goroutine
// (SynchronousEventHandler, as ferry's source does) instead of passing
// through its streamer channel; both are printed so ferry's share is never
// taken against the slower of the two.
func decodeCeiling(ctx context.Context, srv *mariadbtest.Server, start string, rows int, synchronous bool) (float64, error) {
	file, posText, ok := strings.Cut(start, ":")
	pos, err := strconv.ParseUint(posText, 10, 32)
	if !ok || err != nil {
		return 0, fmt.Errorf("start position %q is not FILE:POS", start)
	}
	cfg := replication.BinlogSyncerConfig{
		ServerID: 98, Flavor: gomysql.MariaDBFlavor, Host: srv.Host, Port: uint16(srv.Port), User: "root",
		VerifyChecksum: true, DisableRetrySync: true, Logger: slog.New(slog.DiscardHandler),
	}
	done := make(chan struct{})
	counter := &rowCounter{want: rows, done: done}
	if synchronous {
		cfg.SynchronousEventHandler = counter
	}
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	t0 := time.Now()
	streamer, err := syncer.StartSync(gomysql.Position{Name: file, Pos: uint32(pos)})
	if err != nil {
		return 0, fmt.Errorf("raw decode: start sync at %s: %w", start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if synchronous {
		select {
		case <-done:
		case <-ctx.Done():
			return 0, fmt.Errorf("raw decode: %d rows not seen: %w", rows, ctx.Err())
		}
		return float64(rows) / time.Since(t0).Seconds(), nil
	}
	for counter.seen < rows {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			return 0, fmt.Errorf("raw decode: after %d of %d rows: %w", counter.seen, rows, err)
		}
		_ = counter.HandleEvent(ev)
	}
	return float64(rows) / time.Since(t0).Seconds(), nil
}

// rowCounter counts the row changes of bench.orders and closes done once it
// has seen want of them. It is used from one goroutine at a time.
type rowCounter struct {
	want, seen int
	done       chan struct{}
	closed     bool
}

func (c *rowCounter) HandleEvent(ev *replication.BinlogEvent) error {
	re, ok := ev.Event.(*replication.RowsEvent)
	if !ok || string(re.Table.Table) != "orders" {
		return nil
	}
	switch ev.Header.EventType {
	case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
		c.seen += len(re.Rows) / 2 // before and after images
	default:
		c.seen += len(re.Rows)
	}
	if c.seen >= c.want && !c.closed {
		close(c.done)
		c.closed = true
	}
	return nil
}
