package mysql

import (
	"testing"

	"github.com/ferry-cdc/ferry"
)

func TestClassifyQuery(t *testing.T) {
	cases := []struct {
		q    string
		kind queryKind
		name string
	}{
		{"BEGIN", queryBegin, ""},
		{"COMMIT", queryCommit, ""},
		{"ROLLBACK", queryRollback, ""},
		{"SAVEPOINT `a`", querySavepoint, "a"},
		{"SAVEPOINT `Sp``1`", querySavepoint, "sp`1"},
		{"ROLLBACK TO `a`", queryRollbackTo, "a"},
		{"rollback work to savepoint B", queryRollbackTo, "b"},
		{"CREATE TABLE `t2` (`id` int) START TRANSACTION", queryBegin, ""},
		{"CREATE TABLE `c` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB", queryStatement, ""},
		{"use `x`; truncate table t", queryStatement, ""},
		{"XA START 'x'", queryXA, ""},
		{"INSERT INTO t VALUES (1)", queryDML, ""},
	}
	for _, c := range cases {
		kind, name := classifyQuery(c.q)
		if kind != c.kind || name != c.name {
			t.Errorf("classifyQuery(%q) = %d %q, want %d %q", c.q, kind, name, c.kind, c.name)
		}
	}
}

// TestRollbackToSavepoint: changes after the savepoint go, ordinals resume
// from it, later savepoints are forgotten, the named one stays.
func TestRollbackToSavepoint(t *testing.T) {
	var tx txState
	add := func(n int) {
		for range n {
			tx.ordinal++
			tx.buf = append(tx.buf, ferry.Change{ID: string(rune('a' + tx.ordinal))})
		}
	}
	add(2)
	tx.setSavepoint("a")
	add(3)
	tx.setSavepoint("b")
	add(1)
	if found, sent := tx.rollbackTo("a"); !found || sent != 0 {
		t.Fatalf("rollbackTo(a) = %v %d", found, sent)
	}
	if len(tx.buf) != 2 || tx.ordinal != 2 || len(tx.savepoints) != 1 {
		t.Fatalf("after rollback to a: %d changes, ordinal %d, savepoints %v", len(tx.buf), tx.ordinal, tx.savepoints)
	}
	if found, _ := tx.rollbackTo("b"); found {
		t.Fatal("savepoint b survived a rollback to the earlier a")
	}
	// part of the transaction was streamed past the savepoint
	add(3)
	tx.streamed, tx.buf = 5, tx.buf[:0]
	if found, sent := tx.rollbackTo("a"); !found || sent != 3 || len(tx.buf) != 0 {
		t.Fatalf("rollbackTo(a) after streaming = %v %d, %d buffered", found, sent, len(tx.buf))
	}
}

func TestParseTruncate(t *testing.T) {
	cases := []struct{ q, db, table string }{
		{"truncate table t", "x", "t"},
		{"TRUNCATE `Shop`.`Order``s`", "Shop", "Order`s"},
		{"truncate table other . t2 ;", "other", "t2"},
	}
	for _, c := range cases {
		db, table, ok := parseTruncate(c.q, "x")
		if !ok || db != c.db || table != c.table {
			t.Errorf("parseTruncate(%q) = %q %q %v", c.q, db, table, ok)
		}
	}
	if _, _, ok := parseTruncate("truncate table a, b", "x"); ok {
		t.Error("a statement that is not TRUNCATE of one table parsed")
	}
}
