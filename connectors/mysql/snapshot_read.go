package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/ferry-cdc/ferry"
)

// chunk is one keyset page of a table, read in a consistent snapshot.
type chunk struct {
	at       position // binlog position the rows are consistent with
	readAt   time.Time
	rows     []snapRow
	last     rawKey // key of the last row; nil when there are none
	lastText string
	final    bool // fewer rows than asked for: nothing follows
}

type snapRow struct {
	key, after ferry.Row
	// id is the change's ID, "snapshot/<position>/<db>.<table>/<key text>";
	// the key text is its tail (one string for both).
	id       string
	keyStart int
}

func (r *snapRow) keyText() string { return r.id[r.keyStart:] }

// snapshotReader reads chunks on a connection of its own. Each chunk is one
// read-only transaction WITH CONSISTENT SNAPSHOT: no locks, no writes, and
// (on MariaDB) the exact binlog position the snapshot corresponds to.
type snapshotReader struct {
	src  *Source
	conn *client.Conn
	// statements of the current plan: the first chunk and the following ones
	plan        *snapshotPlan
	limit       int
	first, next *client.Stmt
	result      gomysql.Result // reused by each chunk's query
}

func (r *snapshotReader) connect(ctx context.Context) error {
	conn, err := r.src.connect(ctx)
	if err != nil {
		return err
	}
	// UTC renders TIMESTAMP like the binlog path; utf8mb4 converts every
	// character set the way the binlog path decodes it.
	for _, q := range []string{"SET time_zone = '+00:00'", "SET NAMES utf8mb4",
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"} {
		if _, err := conn.Execute(q); err != nil {
			conn.Close()
			return fmt.Errorf("prepare snapshot session (%s): %w", q, err)
		}
	}
	r.conn = conn
	return nil
}

// prepare readies the statements of a plan.
func (r *snapshotReader) prepare(p *snapshotPlan, limit int) error {
	r.closeStatements()
	var err error
	if r.first, err = r.conn.Prepare(p.chunkSQL(false, limit)); err != nil {
		return fmt.Errorf("backfill of %s.%s: %w", p.db, p.table, err)
	}
	if r.next, err = r.conn.Prepare(p.chunkSQL(true, limit)); err != nil {
		return fmt.Errorf("backfill of %s.%s: %w", p.db, p.table, err)
	}
	r.plan, r.limit = p, limit
	return nil
}

// read reads the chunk after last (from the start when last is nil).
func (r *snapshotReader) read(last rawKey) (c *chunk, err error) {
	if _, err := r.conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, err
	}
	broken := false // rows of the result are left unread on the connection
	defer func() {
		if broken {
			r.close() // the caller reconnects (recoverRead)
			return
		}
		if _, cerr := r.conn.Execute("COMMIT"); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c = &chunk{readAt: time.Now().UTC()}
	if c.at, err = r.snapshotPosition(); err != nil {
		return nil, err
	}
	stmt, args := r.first, []any(nil)
	if last != nil {
		stmt, args = r.next, keysetArgs(last)
	}
	if broken, err = r.readRows(c, stmt, args); err != nil {
		return nil, err
	}
	c.final = len(c.rows) < r.limit
	return c, nil
}

// rowBlock is how many rows' values readRows allocates at once.
const rowBlock = 256

// readRows streams the chunk's rows into c. The values of a block of rows
// share one backing array and their text a few arena blocks, so a row
// costs a handful of allocations; only the last row's key is kept raw.
// broken reports an error of Ferry's own while rows were still arriving.
func (r *snapshotReader) readRows(c *chunk, stmt *client.Stmt, args []any) (broken bool, err error) {
	p := r.plan
	width := p.rowWidth()
	c.rows = make([]snapRow, 0, r.limit)
	var (
		values []any
		arena  textArena
		kept   rawKey
		id     []byte
	)
	prefix := "snapshot/" + c.at.String() + "/" + p.db + "." + p.table + "/"
	err = stmt.ExecuteSelectStreaming(&r.result, func(res []gomysql.FieldValue) error {
		if len(values) < width {
			values = make([]any, min(r.limit, rowBlock)*width)
		}
		row, key, err := p.row(res, values[:width:width], &arena)
		if err != nil {
			broken = true
			return err
		}
		values = values[width:]
		id = appendKeyText(append(id[:0], prefix...), key)
		c.rows = append(c.rows, snapRow{key: key, after: row, id: arena.text(id), keyStart: len(prefix)})
		kept = p.keepKey(kept, res)
		return nil
	}, func(res *gomysql.Result) error {
		if err := p.rawTemporal(res); err != nil {
			broken = true
			return err
		}
		return nil
	}, args...)
	if err != nil {
		return broken, err
	}
	if n := len(c.rows); n > 0 {
		c.lastText = c.rows[n-1].keyText()
		if c.last, err = p.rawKey(kept); err != nil {
			return false, fmt.Errorf("backfill of %s.%s: %w", p.db, p.table, err)
		}
	}
	return false, nil
}

// appendKeyText appends ferry.KeyText(key); a single integer column, the
// common key, is written in place (its digits are never escaped).
func appendKeyText(dst []byte, key ferry.Row) []byte {
	if len(key.Values) == 1 {
		switch v := key.Values[0].(type) {
		case int64:
			return strconv.AppendInt(dst, v, 10)
		case uint64:
			return strconv.AppendUint(dst, v, 10)
		}
	}
	return append(dst, ferry.KeyText(key)...)
}

// snapshotPosition is the binlog position of the transaction's snapshot.
// MariaDB reports it exactly (binlog_snapshot_file/position, consistent with
// the snapshot by its group commit). MySQL has no such status; the current
// position read right after the snapshot started is at or after it, which
// the window tolerates (see window.go).
func (r *snapshotReader) snapshotPosition() (position, error) {
	if r.src.info.flavor == gomysql.MariaDBFlavor {
		res, err := r.conn.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return position{}, err
		}
		var p position
		for i := range res.Values {
			name, _ := res.GetString(i, 0)
			switch strings.ToLower(name) {
			case "binlog_snapshot_file":
				p.File, _ = res.GetString(i, 1)
			case "binlog_snapshot_position":
				pos, _ := res.GetString(i, 1)
				var n uint64
				if _, err := fmt.Sscan(pos, &n); err == nil {
					p.Pos = uint32(n)
				}
			}
		}
		if p.File == "" {
			return position{}, errFatal(errors.New("the server reports no binlog_snapshot_file; is binary logging on?"))
		}
		return p, nil
	}
	file, pos, err := r.src.masterStatus(r.conn)
	return position{File: file, Pos: pos}, err
}

// estimate returns the server's estimate of the rows a backfill reads:
// exact (COUNT) with a condition, the table statistics without one.
func (r *snapshotReader) estimate(p *snapshotPlan) (uint64, error) {
	q := "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?"
	args := []any{p.db, p.table}
	if p.where != "" {
		q, args = p.countSQL(), nil
	}
	res, err := r.conn.Execute(q, args...)
	if err != nil {
		return 0, err
	}
	if len(res.Values) == 0 {
		return 0, nil
	}
	n, _ := res.GetUint(0, 0)
	return n, nil
}

func (r *snapshotReader) closeStatements() {
	for _, s := range []*client.Stmt{r.first, r.next} {
		if s != nil {
			_ = s.Close()
		}
	}
	r.first, r.next = nil, nil
}

func (r *snapshotReader) close() {
	if r.conn == nil {
		return
	}
	r.closeStatements()
	r.conn.Close()
	r.conn = nil
}
