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
// returns rows/s over rows row changes of bench.orders.
func decodeCeiling(ctx context.Context, srv *mariadbtest.Server, start string, rows int) (float64, error) {
	file, posText, ok := strings.Cut(start, ":")
	pos, err := strconv.ParseUint(posText, 10, 32)
	if !ok || err != nil {
		return 0, fmt.Errorf("start position %q is not FILE:POS", start)
	}
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 98, Flavor: gomysql.MariaDBFlavor, Host: srv.Host, Port: uint16(srv.Port), User: "root",
		VerifyChecksum: true, DisableRetrySync: true, Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	t0 := time.Now()
	streamer, err := syncer.StartSync(gomysql.Position{Name: file, Pos: uint32(pos)})
	if err != nil {
		return 0, fmt.Errorf("raw decode: start sync at %s: %w", start, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	seen := 0
	for seen < rows {
		ev, err := streamer.GetEvent(ctx)
		if err != nil {
			return 0, fmt.Errorf("raw decode: after %d of %d rows: %w", seen, rows, err)
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok && string(re.Table.Table) == "orders" {
			switch ev.Header.EventType {
			case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1:
				seen += len(re.Rows) / 2 // before and after images
			default:
				seen += len(re.Rows)
			}
		}
	}
	return float64(rows) / time.Since(t0).Seconds(), nil
}
