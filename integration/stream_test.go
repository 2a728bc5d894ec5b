package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

type changeData struct {
	Op     string         `json:"op"`
	DB     string         `json:"db"`
	Table  string         `json:"table"`
	PK     map[string]any `json:"pk"`
	Before map[string]any `json:"before"`
	After  map[string]any `json:"after"`
	Source struct {
		File     string `json:"file"`
		Pos      int64  `json:"pos"`
		GTID     string `json:"gtid"`
		ServerID int    `json:"server_id"`
		TsMs     int64  `json:"ts_ms"`
	} `json:"source"`
	Tx struct {
		ID    string `json:"id"`
		Order int    `json:"order"`
	} `json:"tx"`
}

func decode(t *testing.T, e event.Event) changeData {
	t.Helper()
	var d changeData
	if err := json.Unmarshal(e.Data(), &d); err != nil {
		t.Fatalf("event %s data: %v", e.ID(), err)
	}
	return d
}

func waitEvents(t *testing.T, r *receiver.Receiver, n int) []event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, n); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // anything beyond n would be a bug
	return r.Events()
}

func TestRowChangesAndTransactions(t *testing.T) {
	name, db, start := binlogDB(t, shared)
	exec1(t, db,
		"CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2), status VARCHAR(20), card VARCHAR(20))",
		"CREATE TABLE nopk (note VARCHAR(20))",
		"CREATE TABLE items (tenant VARCHAR(10), n INT, qty INT, PRIMARY KEY (tenant, n))",
		"INSERT INTO orders VALUES (1, 10.50, 'new', '4111')",
		"UPDATE orders SET status = 'paid' WHERE id = 1",
		"DELETE FROM orders WHERE id = 1",
		"INSERT INTO nopk VALUES ('x')",
		"INSERT INTO items VALUES ('a/b', 1, 5)",
	)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"INSERT INTO orders VALUES (2, 1, 'new', '1')", "INSERT INTO orders VALUES (3, 2, 'new', '2')", "UPDATE orders SET total = 9 WHERE id = 2"} {
		if _, err := tx.Exec(st); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	rb, _ := db.Begin()
	_, _ = rb.Exec("INSERT INTO orders VALUES (99, 0, 'rolled back', '0')")
	_ = rb.Rollback()
	exec1(t, db, "INSERT INTO orders VALUES (4, 4, 'last', '4')")

	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r),
		extra: fmt.Sprintf("    exclude_columns: [\"%s.orders.card\"]", name)}
	p := startFerry(t, cfg.yaml(t, t.TempDir()))
	events := sortBySource(t, waitEvents(t, r, 9))
	if len(events) != 9 {
		t.Fatalf("got %d events, want 9 (rolled-back insert must not appear)", len(events))
	}
	checkDefaultEvent(t, events[0], name)

	types := make([]string, len(events))
	for i, e := range events {
		types[i] = strings.TrimPrefix(e.Type(), "com.example."+name+".")
		d := decode(t, e)
		if d.After != nil && d.After["card"] != nil || d.Before != nil && d.Before["card"] != nil {
			t.Errorf("excluded column card present in %s", e.ID())
		}
		if d.After != nil && d.After["id"] == float64(99) {
			t.Errorf("rolled-back insert emitted: %s", e.ID())
		}
	}
	want := []string{"orders.created", "orders.updated", "orders.deleted", "nopk.created", "items.created",
		"orders.created", "orders.created", "orders.updated", "orders.created"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("event types:\n got %v\nwant %v", types, want)
	}
	upd, del := decode(t, events[1]), decode(t, events[2])
	if upd.Before["status"] != "new" || upd.After["status"] != "paid" || del.After != nil || del.Before["status"] != "paid" || del.PK["id"] != float64(1) {
		t.Errorf("before/after wrong: update %+v / delete %+v", upd, del)
	}
	if events[3].Subject() != "" || events[3].Extensions()["partitionkey"] != name+".nopk" {
		t.Errorf("no-PK table: subject %q partitionkey %v", events[3].Subject(), events[3].Extensions()["partitionkey"])
	}
	if events[4].Subject() != "a%2Fb/1" || events[4].Extensions()["partitionkey"] != name+".items/a%2Fb/1" {
		t.Errorf("composite key: subject %q partitionkey %v", events[4].Subject(), events[4].Extensions()["partitionkey"])
	}
	// The three changes of the multi-statement transaction share its id and are ordered.
	txID := decode(t, events[5]).Tx.ID
	for i, e := range events[5:8] {
		d := decode(t, e)
		if d.Tx.ID != txID || d.Tx.Order != i+1 || e.ID() != fmt.Sprintf("%s#%d", txID, i+1) || !e.Time().Equal(events[5].Time()) {
			t.Errorf("tx change %d: tx=%+v id=%s time=%v", i, d.Tx, e.ID(), e.Time())
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

var mariaGTID = regexp.MustCompile(`^\d+-\d+-\d+$`)

// sourceOrder is a change's place in the binlog: GTID sequence, then its
// ordinal in the transaction (MariaDB ids are DOMAIN-SERVER-SEQ#ORDINAL).
func sourceOrder(t *testing.T, id string) (seq, ordinal int) {
	t.Helper()
	var domain, server int
	if _, err := fmt.Sscanf(id, "%d-%d-%d#%d", &domain, &server, &seq, &ordinal); err != nil {
		t.Fatalf("event id %q is not DOMAIN-SERVER-SEQ#ORDINAL: %v", id, err)
	}
	return seq, ordinal
}

// sortBySource orders events as they are in the binlog; sinks only keep
// order per partition key, so arrival order across keys is arbitrary.
func sortBySource(t *testing.T, events []event.Event) []event.Event {
	sort.SliceStable(events, func(i, j int) bool {
		si, oi := sourceOrder(t, events[i].ID())
		sj, oj := sourceOrder(t, events[j].ID())
		if si != sj || oi != oj {
			return si < sj || si == sj && oi < oj
		}
		// The old key's delete of a key-changing update precedes the
		// update (same ordinal); different keys may arrive in any order.
		return strings.HasSuffix(events[i].ID(), "/old-key") && !strings.HasSuffix(events[j].ID(), "/old-key")
	})
	return events
}

// checkDefaultEvent checks every attribute of the contract's default event.
func checkDefaultEvent(t *testing.T, e event.Event, db string) {
	t.Helper()
	d := decode(t, e)
	switch {
	case e.SpecVersion() != "1.0":
		t.Errorf("specversion %s", e.SpecVersion())
	case e.ID() != d.Tx.ID+"#1" || !mariaGTID.MatchString(d.Tx.ID) || d.Source.GTID != d.Tx.ID:
		t.Errorf("id %q, tx %+v, gtid %q", e.ID(), d.Tx, d.Source.GTID)
	case e.Source() != "/ferry/db/"+db+"/orders":
		t.Errorf("source %s", e.Source())
	case e.Type() != "com.example."+db+".orders.created":
		t.Errorf("type %s", e.Type())
	case e.Subject() != "1" || e.Extensions()["partitionkey"] != db+".orders/1":
		t.Errorf("subject %q partitionkey %v", e.Subject(), e.Extensions()["partitionkey"])
	case e.DataContentType() != "application/json":
		t.Errorf("datacontenttype %s", e.DataContentType())
	case time.Since(e.Time()) > time.Minute || e.Time().UnixMilli() != d.Source.TsMs:
		t.Errorf("time %v, ts_ms %d", e.Time(), d.Source.TsMs)
	case d.Op != "create" || d.DB != db || d.Table != "orders" || d.PK["id"] != float64(1) || d.Before != nil:
		t.Errorf("data %+v", d)
	case !strings.HasPrefix(d.Source.File, "mysql-bin.") || d.Source.Pos < 4 || d.Source.ServerID != 1:
		t.Errorf("data.source %+v", d.Source)
	case d.After["total"] != "10.50" || d.After["status"] != "new":
		t.Errorf("after %v", d.After)
	}
}

// TestRestartResumesWithoutLossOrDuplicates stops Ferry gracefully, writes
// while it is down, and starts it again: every change arrives exactly once.
func TestRestartResumesWithoutLossOrDuplicates(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			exec1(t, db, fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", i, i))
		}
	}
	p := startFerry(t, cfg)
	insert(0, 100)
	waitEvents(t, r, 100)
	if code := p.stop(); code != 0 {
		t.Fatalf("first run exit code %d", code)
	}
	code, out, _ := runFerry(t, 30*time.Second, "checkpoint", "show", "-c", cfg, "--source", "db")
	if code != 0 || !strings.Contains(out, "db: mysql-bin.") || !strings.Contains(out, "gtid=") {
		t.Fatalf("checkpoint show = %d %q", code, out)
	}
	insert(100, 200)
	p2 := startFerry(t, cfg)
	events := waitEvents(t, r, 200)
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID()] {
			t.Errorf("duplicate %s after a clean restart", e.ID())
		}
		seen[e.ID()] = true
	}
	if len(events) != 200 {
		t.Fatalf("got %d events, want 200", len(events))
	}
	if code := p2.stop(); code != 0 {
		t.Fatalf("second run exit code %d", code)
	}
}
