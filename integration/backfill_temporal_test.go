package integration

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// temporalTable pages by a DATETIME(6) primary key and holds every temporal
// type at several precisions. The keys include a midnight (which the
// binary protocol sends as 4 bytes), whole seconds (7 bytes), fractions
// (11 bytes), keys a microsecond apart and the zero date; the other columns
// fractions with trailing zeros, zero dates, zero months and days,
// negative and long times, and NULLs.
var temporalTable = []string{
	`CREATE TABLE temporal (
		at DATETIME(6) NOT NULL PRIMARY KEY,
		d DATE NULL, t0 TIME NULL, t1 TIME(1) NULL, t6 TIME(6) NULL,
		dt0 DATETIME NULL, dt2 DATETIME(2) NULL, dt6 DATETIME(6) NULL,
		ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, ts6 TIMESTAMP(6) NULL
	)`,
	"SET STATEMENT time_zone = '+02:00', sql_mode = '' FOR INSERT INTO temporal VALUES " + strings.Join([]string{
		`('2024-01-01 00:00:00', '2024-02-29', '00:00:00', '-838:59:59.0', '12:34:56.000001',
			'2024-01-01 00:00:00', '2024-01-01 23:59:59.99', '2024-01-01 00:00:00.000000',
			'2024-01-01 00:00:00', '2024-01-01 00:00:00.100', '2024-01-01 02:00:00.000001')`,
		`('2024-01-01 00:00:01', '1000-01-01', '838:59:59', '-00:00:00.5', '-01:02:03.400000',
			'9999-12-31 23:59:59', '1000-01-01 00:00:00.01', '2024-06-30 12:00:00.5',
			'2038-01-19 05:14:07', '1970-01-01 02:00:01.999', '2024-06-30 14:00:00.500000')`,
		`('2024-01-01 00:00:01.000001', '0000-00-00', '100:00:00', '00:00:00.1', '00:00:00',
			'0000-00-00 00:00:00', '2024-00-15 10:00:00', '2024-02-00 10:00:00.123456',
			'0000-00-00 00:00:00', NULL, '2024-02-29 23:59:59.999999')`,
		`('2024-01-01 00:00:01.000002', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
		`('2024-01-01 00:00:01.5', '2024-00-15', '-00:00:01', '23:59:59.9', '-838:59:59.000000',
			'2024-02-29 12:00:00', '2024-02-29 12:00:00.00', '2024-02-29 12:00:00.000100',
			'2024-02-29 12:00:00', '2024-02-29 12:00:00.001', '2024-02-29 12:00:00.010000')`,
		`('0000-00-00 00:00:00', '2024-12-31', '01:00:00', '01:00:00.0', '01:00:00.999999',
			'2024-12-31 23:59:59', '2024-12-31 23:59:59.50', '2024-12-31 23:59:59.999999',
			'2024-12-31 23:59:59', '2024-12-31 23:59:59.999', '2024-12-31 23:59:59.999999')`,
		`('9999-12-31 23:59:59.999999', '9999-12-31', '-12:00:00', '12:00:00.5', '00:00:00.000001',
			'1000-01-01 00:00:00', '1000-01-01 00:00:00.00', '1000-01-01 00:00:00.000000',
			'1970-01-01 02:00:01', '1970-01-01 02:00:01.000', '1970-01-01 02:00:01.000000')`,
	}, ", "),
}

// TestBackfillTemporalValuesEqualStreamValues: DATE, DATETIME, TIMESTAMP
// and TIME values a backfill reads equal, value for value, those streamed
// when the rows were inserted, with the chunks paged by a DATETIME(6) key
// two rows at a time (each chunk's last key goes back to the server as the
// next one's bound, and into the checkpoint).
func TestBackfillTemporalValuesEqualStreamValues(t *testing.T) {
	const rows = 7
	name, _, start := binlogDB(t, shared, temporalTable...)
	src := openSource(t, name+".*", start, nil)
	streamed := readUntil(t, src, 30*time.Second, func(c []ferry.Change) bool { return len(c) >= rows })
	table := name + ".temporal"
	if err := src.Backfill(context.Background(), ferry.BackfillRequest{Table: table, Chunk: 2}); err != nil {
		t.Fatal(err)
	}
	all := readUntil(t, src, 30*time.Second, func([]ferry.Change) bool { return backfillDone(src, table) })
	want := map[string]ferry.Change{}
	for _, c := range streamed {
		want[fmt.Sprint(c.After.Values[0])] = c
	}
	var snaps int
	for _, c := range all {
		if c.Op != ferry.OpSnapshot {
			continue
		}
		snaps++
		s, ok := want[fmt.Sprint(c.After.Values[0])]
		if !ok {
			t.Errorf("snapshot row %v was not streamed", c.After.Values)
			continue
		}
		if !reflect.DeepEqual(c.After.Columns, s.After.Columns) {
			t.Fatalf("columns %v, want %v", c.After.Columns, s.After.Columns)
		}
		for j, col := range s.After.Columns {
			if got := c.After.Values[j]; !reflect.DeepEqual(got, s.After.Values[j]) {
				t.Errorf("key %v column %s: backfill %#v (%T), stream %#v (%T)", c.Key.Values, col, got, got, s.After.Values[j], s.After.Values[j])
			}
		}
		if !reflect.DeepEqual(c.Key, s.Key) {
			t.Errorf("key %v, stream %v", c.Key, s.Key)
		}
	}
	if snaps != rows {
		t.Fatalf("got %d snapshot changes, want %d", snaps, rows)
	}
	for _, p := range src.Backfills() {
		if p.Table == table && (p.Rows != rows || p.Chunks < rows/2) {
			t.Errorf("progress: %d rows in %d chunks, want %d rows in at least %d", p.Rows, p.Chunks, rows, rows/2)
		}
	}
}
