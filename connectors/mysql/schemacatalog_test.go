package mysql

import (
	"slices"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
)

// TestSchemaSnapshotHoldsOffDDL: a DDL issued right after the schema
// snapshot read its binlog position is not in the schemas it reads. The
// schema history takes them as in force from that position, and the
// stream applies the DDL when it reads it, after that position: a schema
// that already held the DDL got it twice, and the rows logged between were
// decoded with a column they do not have (the table was quarantined).
// Reading the columns is not covered by the consistent snapshot; the
// tables' metadata locks make the DDL wait until the snapshot is over.
func TestSchemaSnapshotHoldsOffDDL(t *testing.T) {
	srv := mariadbtest.StartT(t, mariadbtest.Options{ServerID: 31})
	if err := srv.Exec(t.Context(), "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, a INT)"); err != nil {
		t.Fatal(err)
	}
	conn, other := connect(t, srv), connect(t, srv)
	binlogEnd := func() position {
		t.Helper()
		r, err := conn.Execute("SHOW MASTER STATUS")
		if err != nil || len(r.Values) == 0 {
			t.Fatalf("SHOW MASTER STATUS: %v", err)
		}
		file, _ := r.GetString(0, 0)
		pos, _ := r.GetUint(0, 1)
		return position{File: file, Pos: uint32(pos)}
	}
	altered := make(chan error, 1)
	cat := catalog{conn: conn, mariadb: true}
	at, tables, err := cat.snapshot([]string{"d"}, func(string, string) bool { return true }, func() (position, error) {
		p := binlogEnd()
		go func() { _, err := other.Execute("ALTER TABLE d.t ADD COLUMN b INT"); altered <- err }()
		// Until the ALTER is done, or waits for the snapshot's lock.
		for {
			select {
			case err := <-altered:
				altered <- err
				return p, nil
			default:
			}
			r, err := conn.Execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock'")
			if err != nil {
				return p, err
			}
			if n, _ := r.GetInt(0, 0); n > 0 {
				return p, nil
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-altered; err != nil {
		t.Fatal(err)
	}
	if end := binlogEnd(); comparePositions(end, at) <= 0 {
		t.Fatalf("the ALTER is not in the binlog after the snapshot's position %s (binlog ends at %s)", at, end)
	}
	got := tables["d.t"]
	if got == nil {
		t.Fatalf("d.t not read; got %v", tables)
	}
	if cols := schemaColumnNames(got); !slices.Equal(cols, []string{"id", "a"}) {
		t.Errorf("the snapshot at %s holds columns %v: the ALTER logged after it is in them; want [id a]", at, cols)
	}
	if !slices.Equal(got.Key, []string{"id"}) {
		t.Errorf("key %v, want [id]", got.Key)
	}
}

func connect(t *testing.T, srv *mariadbtest.Server) *client.Conn {
	t.Helper()
	c, err := client.Connect(srv.Addr, "root", "", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
