package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// appLoad generates what real applications do to a database, at random
// from one seed: multi-table transactions, savepoints and partial
// rollbacks, INSERT ... SELECT, REPLACE, INSERT ... ON DUPLICATE KEY
// UPDATE, multi-table UPDATE and DELETE, triggers, a stored procedure,
// LOAD DATA, CREATE TABLE ... SELECT, TRUNCATE, ALTER and RENAME between
// transactions, rolled-back transactions and large ones. It does not
// predict the rows: the verifier compares what Ferry delivered with
// SELECT. It only records what the verifier cannot see in row events:
// table renames and the defaults of added columns.
type appLoad struct {
	db   *sql.DB
	rng  *rand.Rand
	name string // the database

	mu       sync.Mutex
	tables   []string          // live tables the load writes (acct tables)
	renames  map[string]string // old table name -> new, in the order made
	defaults map[string]string // "table.column" of added columns -> default text
	classes  map[string]int    // statements run, by class (committed or not)
	txs      atomic.Int64      // transactions ended (committed or rolled back)
	seq      int               // for unique names and values
	// skip names classes not to generate (APPLOAD_SKIP, to narrow down a
	// failure): "ddl", "create table select", "truncate", "large
	// transaction", "savepoint", "rolled-back transaction".
	skip map[string]bool
}

// rolledBackMark starts every value written by a transaction the load
// rolls back (wholly or to a savepoint): no event may ever carry it.
const rolledBackMark = "RB-"

const acctColumns = "id INT NOT NULL PRIMARY KEY, k INT NOT NULL, v VARCHAR(60) NULL, n BIGINT NOT NULL DEFAULT 0"

// setup creates the tables, the trigger-fed audit table and the procedure.
func (l *appLoad) setup(ctx context.Context) error {
	l.renames, l.defaults, l.classes = map[string]string{}, map[string]string{}, map[string]int{}
	stmts := []string{"CREATE TABLE audit (id BIGINT AUTO_INCREMENT PRIMARY KEY, tbl VARCHAR(20) NOT NULL, ref INT NOT NULL, what CHAR(1) NOT NULL)",
		"CREATE TABLE load_end (id INT PRIMARY KEY)"}
	for i := 1; i <= 3; i++ {
		t := fmt.Sprintf("acct%d", i)
		l.tables = append(l.tables, t)
		stmts = append(stmts, "CREATE TABLE "+t+" ("+acctColumns+")")
	}
	stmts = append(stmts,
		"CREATE TRIGGER acct1_ai AFTER INSERT ON acct1 FOR EACH ROW INSERT INTO audit (tbl, ref, what) VALUES ('acct1', NEW.id, 'i')",
		"CREATE TRIGGER acct1_au AFTER UPDATE ON acct1 FOR EACH ROW INSERT INTO audit (tbl, ref, what) VALUES ('acct1', NEW.id, 'u')",
		`CREATE PROCEDURE bump(lo INT, hi INT, val VARCHAR(60))
BEGIN
  UPDATE acct2 SET n = n + 1, v = val WHERE id BETWEEN lo AND hi;
  INSERT INTO acct2 (id, k, v) VALUES (hi + 1, hi, val) ON DUPLICATE KEY UPDATE n = n + 10;
  DELETE FROM audit WHERE ref = lo;
END`)
	for _, s := range stmts {
		if _, err := l.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("setup %q: %w", s, err)
		}
	}
	return nil
}

// step runs one unit of work: mostly a transaction, sometimes a statement
// that commits on its own (DDL, CREATE ... SELECT, TRUNCATE), sometimes a
// large transaction.
func (l *appLoad) step(ctx context.Context) error {
	defer l.txs.Add(1)
	switch r := l.rng.IntN(100); {
	case r < 2 && !l.skip["ddl"]:
		return l.ddl(ctx)
	case r >= 2 && r < 4 && !l.skip["create table select"]:
		return l.createSelect(ctx)
	case r == 4 && !l.skip["truncate"]:
		return l.truncate(ctx)
	case r >= 5 && r < 7 && !l.skip["large transaction"]:
		return l.large(ctx)
	default:
		return l.transaction(ctx)
	}
}

func (l *appLoad) count(class string) {
	l.mu.Lock()
	l.classes[class]++
	l.mu.Unlock()
}

// table picks a live acct table.
func (l *appLoad) table() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tables[l.rng.IntN(len(l.tables))]
}

func (l *appLoad) value(mark string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	return fmt.Sprintf("%sv%d", mark, l.seq)
}

// transaction runs 1 to 6 statements in one transaction, some of them
// inside a savepoint that is released or rolled back to, and commits it,
// or rolls it back one time in ten.
func (l *appLoad) transaction(ctx context.Context) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	rollback := l.rng.IntN(10) == 0 && !l.skip["rolled-back transaction"]
	mark := ""
	if rollback {
		mark = rolledBackMark
	}
	for range 1 + l.rng.IntN(6) {
		if l.rng.IntN(5) == 0 && !l.skip["savepoint"] {
			err = l.savepoint(ctx, tx, mark)
		} else {
			err = l.statement(ctx, tx, mark)
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if rollback {
		l.count("rolled-back transaction")
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// savepoint runs statements after SAVEPOINT, then rolls back to it (their
// values carry the rolled-back mark) or releases it.
func (l *appLoad) savepoint(ctx context.Context, tx *sql.Tx, mark string) error {
	undo := l.rng.IntN(2) == 0
	inner := mark
	if undo {
		inner = rolledBackMark
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT sp"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	for range 1 + l.rng.IntN(3) {
		if err := l.statement(ctx, tx, inner); err != nil {
			return err
		}
	}
	end := "RELEASE SAVEPOINT sp"
	l.count("savepoint released")
	if undo {
		end = "ROLLBACK TO SAVEPOINT sp"
		l.count("rollback to savepoint")
	}
	if _, err := tx.ExecContext(ctx, end); err != nil {
		return fmt.Errorf("%s: %w", end, err)
	}
	return nil
}

// statement runs one random DML statement in tx. Values written carry
// mark. Duplicate keys are part of the game: a statement refused for one
// is rolled back by the server alone, as in applications.
func (l *appLoad) statement(ctx context.Context, tx *sql.Tx, mark string) error {
	a, b := l.table(), l.table()
	lo := 1 + l.rng.IntN(300)
	hi := lo + l.rng.IntN(6)
	v := l.value(mark)
	var class, q string
	var args []any
	switch l.rng.IntN(11) {
	case 0:
		class, q = "insert", "INSERT INTO "+a+" (id, k, v, n) VALUES "+l.rows(lo, 1+l.rng.IntN(4), v)
	case 1:
		class, q, args = "update", "UPDATE "+a+" SET v = ?, n = n + 1 WHERE id BETWEEN ? AND ?", []any{v, lo, hi}
	case 2:
		class, q, args = "update key", "UPDATE "+a+" SET id = id + 1000, v = ? WHERE id = ?", []any{v, lo}
	case 3:
		class, q, args = "delete", "DELETE FROM "+a+" WHERE id BETWEEN ? AND ?", []any{lo, lo + l.rng.IntN(3)}
	case 4:
		class, q = "replace", "REPLACE INTO "+a+" (id, k, v, n) VALUES "+l.rows(lo, 1+l.rng.IntN(3), v)
	case 5:
		class, q = "insert on duplicate key update", "INSERT INTO "+a+" (id, k, v, n) VALUES "+l.rows(lo, 1+l.rng.IntN(3), v)+
			" ON DUPLICATE KEY UPDATE n = n + VALUES(n), v = VALUES(v)"
	case 6:
		class, q, args = "insert select", "INSERT IGNORE INTO "+a+" (id, k, v, n) SELECT id + 1, k, ?, n + 1 FROM "+b+" WHERE id BETWEEN ? AND ?", []any{v, lo, hi}
	case 7:
		class, q, args = "multi-table update", "UPDATE "+a+" x JOIN "+b+" y ON y.id = x.id + 1 SET x.n = y.n + 1, x.v = ? WHERE x.id BETWEEN ? AND ?", []any{v, lo, hi}
	case 8:
		class, q, args = "multi-table delete", "DELETE x, y FROM "+a+" x JOIN "+b+" y ON y.id = x.id WHERE x.id BETWEEN ? AND ?", []any{lo, lo + 1}
	case 9:
		class, q, args = "stored procedure", "CALL bump(?, ?, ?)", []any{lo, hi, v}
	default:
		return l.loadData(ctx, tx, a, lo, mark)
	}
	l.count(class)
	if _, err := tx.ExecContext(ctx, q, args...); err != nil && !isDuplicate(err) {
		return fmt.Errorf("%s: %w", class, err)
	}
	return nil
}

// rows returns n VALUES tuples from id lo on.
func (l *appLoad) rows(lo, n int, v string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("(%d, %d, '%s', %d)", lo+i, l.rng.IntN(1000), v, l.rng.IntN(50))
	}
	return strings.Join(parts, ", ")
}

var loadDataSeq atomic.Int64

// loadData loads a few rows with LOAD DATA LOCAL INFILE (REPLACE mode).
func (l *appLoad) loadData(ctx context.Context, tx *sql.Tx, table string, lo int, mark string) error {
	var b strings.Builder
	for i := range 1 + l.rng.IntN(5) {
		fmt.Fprintf(&b, "%d\t%d\t%s\t%d\n", lo+i, l.rng.IntN(1000), l.value(mark), l.rng.IntN(50))
	}
	name := fmt.Sprintf("appload%d", loadDataSeq.Add(1))
	data := b.String()
	mysql.RegisterReaderHandler(name, func() io.Reader { return strings.NewReader(data) })
	defer mysql.DeregisterReaderHandler(name)
	l.count("load data")
	if _, err := tx.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' REPLACE INTO TABLE "+table+" (id, k, v, n)"); err != nil {
		return fmt.Errorf("load data: %w", err)
	}
	return nil
}

// large commits one transaction of about 800 changes, more than the
// source's max_tx_buffer (300 in the test), so it is streamed in parts.
func (l *appLoad) large(ctx context.Context) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	a := l.table()
	base := 2000 + l.rng.IntN(5000)
	for i := range 4 {
		q := "REPLACE INTO " + a + " (id, k, v, n) VALUES " + l.rows(base+i*100, 100, l.value(""))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("large transaction: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+a+" SET n = n + 1 WHERE id BETWEEN ? AND ?", base, base+399); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("large transaction: %w", err)
	}
	l.count("large transaction")
	return tx.Commit()
}

// createSelect copies a range of a table into a new one with CREATE TABLE
// ... SELECT; the new table joins the load.
func (l *appLoad) createSelect(ctx context.Context) error {
	from := l.table()
	l.mu.Lock()
	l.seq++
	name := fmt.Sprintf("ctas%d", l.seq)
	l.mu.Unlock()
	lo := l.rng.IntN(300)
	q := fmt.Sprintf("CREATE TABLE %s (%s) SELECT id, k, v, n FROM %s WHERE id BETWEEN %d AND %d", name, acctColumns, from, lo, lo+50)
	if _, err := l.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create table ... select: %w", err)
	}
	l.count("create table select")
	l.mu.Lock()
	l.tables = append(l.tables, name)
	l.mu.Unlock()
	return nil
}

func (l *appLoad) truncate(ctx context.Context) error {
	t := l.table()
	if _, err := l.db.ExecContext(ctx, "TRUNCATE TABLE "+t); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	l.count("truncate")
	return nil
}

// ddl adds a column with a default, or renames a table to a new name.
func (l *appLoad) ddl(ctx context.Context) error {
	t := l.table()
	l.mu.Lock()
	l.seq++
	seq := l.seq
	l.mu.Unlock()
	if l.rng.IntN(2) == 0 {
		col := fmt.Sprintf("x%d", seq)
		if _, err := l.db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s INT NOT NULL DEFAULT %d", t, col, seq)); err != nil {
			return fmt.Errorf("alter table: %w", err)
		}
		l.count("alter table add column")
		l.mu.Lock()
		l.defaults[t+"."+col] = fmt.Sprint(seq)
		l.mu.Unlock()
		return nil
	}
	if t == "acct1" || t == "acct2" { // the trigger and the procedure name them
		return nil
	}
	to := fmt.Sprintf("%s_r%d", t, seq)
	if _, err := l.db.ExecContext(ctx, "RENAME TABLE "+t+" TO "+to); err != nil {
		return fmt.Errorf("rename table: %w", err)
	}
	l.count("rename table")
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renames[t] = to
	for i, name := range l.tables {
		if name == t {
			l.tables[i] = to
		}
	}
	for k, v := range l.defaults {
		if tbl, col, _ := strings.Cut(k, "."); tbl == t {
			delete(l.defaults, k)
			l.defaults[to+"."+col] = v
		}
	}
	return nil
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}
