package integration

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// minimalServer starts a server that logs no column metadata, as MySQL 5.7
// and MariaDB before 10.5 do.
func minimalServer(t *testing.T) *mariadbtest.Server {
	t.Helper()
	return mariadbtest.StartT(t, mariadbtest.Options{ServerID: 16, ExtraArgs: []string{"--binlog-row-metadata=MINIMAL"}})
}

// ddlSeed is the seed of a randomized schema-history test; DDL_SEED
// replays a run.
func ddlSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DDL_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DDL_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (DDL_SEED replays it)", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with DDL_SEED=%d", seed)
		}
	})
	return seed
}

// ddlTable is a table of the DDL workload as it is now.
type ddlTable struct {
	name        string
	partitioned bool
	cols        []ddlCol // without id, which is first
}

type ddlCol struct {
	name string
	kind colKind
}

// ddlWorkload writes a random burst of DDL (every kind the history
// follows) with rows between, and keeps what SELECT says each row holds
// right after it was written.
type ddlWorkload struct {
	t      *testing.T
	db     *sql.DB
	rng    *rand.Rand
	tables []*ddlTable
	nextID int
	nextCo int
	want   map[string]ddlRow // id -> expected row
}

type ddlRow struct {
	table string
	cols  map[string]*string
	kinds map[string]colKind
}

// binaryKind is what MODIFY and CHANGE turn a column into: every value
// converts to bytes.
var binaryKind = colKind{ddl: "VARBINARY(1000)", values: []string{"X'00FF'"}, want: "REPLACE(TO_BASE64(%s), '\\n', '')"}

func (w *ddlWorkload) kind() colKind {
	for {
		k := colKinds[w.rng.IntN(len(colKinds))]
		if !strings.HasSuffix(k.ddl, " NULL") {
			return k
		}
	}
}

func (w *ddlWorkload) column() ddlCol {
	w.nextCo++
	return ddlCol{name: fmt.Sprintf("c%d", w.nextCo), kind: w.kind()}
}

func (w *ddlWorkload) exec(stmts ...string) {
	w.t.Helper()
	exec1(w.t, w.db, stmts...)
}

func (w *ddlWorkload) create(name string, partitioned bool) *ddlTable {
	t := &ddlTable{name: name, partitioned: partitioned}
	defs := []string{"id INT NOT NULL PRIMARY KEY"}
	for range 2 + w.rng.IntN(3) {
		c := w.column()
		t.cols = append(t.cols, c)
		defs = append(defs, c.name+" "+c.kind.ddl+" NULL")
	}
	q := fmt.Sprintf("CREATE TABLE %s (%s) CHARACTER SET utf8mb4", name, strings.Join(defs, ", "))
	if partitioned {
		q += " PARTITION BY HASH (id) PARTITIONS 3"
	}
	w.exec(q)
	return t
}

// insert writes a row into t and records what SELECT returns for it.
func (w *ddlWorkload) insert(t *ddlTable) {
	w.t.Helper()
	w.nextID++
	names, vals, exprs := []string{"id"}, []string{strconv.Itoa(w.nextID)}, []string{}
	for _, c := range t.cols {
		names = append(names, c.name)
		v := c.kind.values[w.rng.IntN(len(c.kind.values))]
		if w.rng.IntN(5) == 0 {
			v = "NULL"
		}
		vals = append(vals, v)
		exprs = append(exprs, fmt.Sprintf(c.kind.want, c.name))
	}
	w.exec(fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", t.name, strings.Join(names, ", "), strings.Join(vals, ", ")))
	row := ddlRow{table: t.name, cols: map[string]*string{}, kinds: map[string]colKind{}}
	got := make([]sql.NullString, len(exprs))
	ptrs := make([]any, len(got))
	for i := range got {
		ptrs[i] = &got[i]
	}
	if len(exprs) > 0 {
		q := fmt.Sprintf("SELECT %s FROM %s WHERE id = %d", strings.Join(exprs, ", "), t.name, w.nextID)
		if err := w.db.QueryRow(q).Scan(ptrs...); err != nil {
			w.t.Fatalf("%s: %v", q, err)
		}
	}
	for i, c := range t.cols {
		row.kinds[c.name] = c.kind
		if got[i].Valid {
			s := got[i].String
			row.cols[c.name] = &s
		} else {
			row.cols[c.name] = nil
		}
	}
	w.want[strconv.Itoa(w.nextID)] = row
}

// step applies one random DDL and writes a row or two after it.
func (w *ddlWorkload) step() {
	t := w.tables[w.rng.IntN(len(w.tables))]
	switch op := w.rng.IntN(9); {
	case op == 0 || len(t.cols) < 2: // ADD COLUMN, at the end, FIRST or AFTER
		c := w.column()
		at := len(t.cols)
		pos := ""
		switch w.rng.IntN(3) {
		case 1:
			pos, at = " FIRST", 0
		case 2:
			i := w.rng.IntN(len(t.cols) + 1)
			if i < len(t.cols) {
				pos, at = " AFTER "+t.cols[i].name, i+1
			}
		}
		w.exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s NULL%s", t.name, c.name, c.kind.ddl, pos))
		if pos == " FIRST" { // before id: the workload keeps id apart, the table does not
			t.cols = slices.Insert(t.cols, 0, c)
		} else {
			t.cols = slices.Insert(t.cols, at, c)
		}
	case op == 1: // DROP COLUMN
		i := w.rng.IntN(len(t.cols))
		w.exec(fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t.name, t.cols[i].name))
		t.cols = slices.Delete(t.cols, i, i+1)
	case op == 2: // MODIFY to bytes
		i := w.rng.IntN(len(t.cols))
		if k := t.cols[i].kind.ddl; k == "INET6" || k == "UUID" {
			return
		}
		w.exec(fmt.Sprintf("ALTER TABLE %s MODIFY %s %s NULL", t.name, t.cols[i].name, binaryKind.ddl))
		t.cols[i].kind = binaryKind
	case op == 3: // RENAME COLUMN
		i := w.rng.IntN(len(t.cols))
		w.nextCo++
		to := fmt.Sprintf("c%d", w.nextCo)
		w.exec(fmt.Sprintf("ALTER TABLE %s RENAME COLUMN %s TO %s", t.name, t.cols[i].name, to))
		t.cols[i].name = to
	case op == 4: // RENAME TABLE
		to := fmt.Sprintf("%s_%d", strings.SplitN(t.name, "_", 2)[0], w.nextID)
		if w.rng.IntN(2) == 0 {
			w.exec(fmt.Sprintf("RENAME TABLE %s TO %s", t.name, to))
		} else {
			w.exec(fmt.Sprintf("ALTER TABLE %s RENAME TO %s", t.name, to))
		}
		t.name = to
	case op == 5: // DROP + CREATE under the same name
		w.exec("DROP TABLE " + t.name)
		*t = *w.create(t.name, t.partitioned)
	case op == 6: // CREATE ... LIKE, then both get rows
		like := &ddlTable{name: fmt.Sprintf("l%d", w.nextID), cols: slices.Clone(t.cols)}
		w.exec(fmt.Sprintf("CREATE TABLE %s LIKE %s", like.name, t.name))
		w.tables = append(w.tables, like)
		w.insert(like)
	case op == 7: // partition maintenance: the columns stay
		t = w.tables[0]
		w.exec(fmt.Sprintf("ALTER TABLE %s ADD PARTITION PARTITIONS 1", t.name))
	default: // CHANGE: rename and retype at once
		i := w.rng.IntN(len(t.cols))
		if k := t.cols[i].kind.ddl; k == "INET6" || k == "UUID" {
			return
		}
		w.nextCo++
		to := fmt.Sprintf("c%d", w.nextCo)
		w.exec(fmt.Sprintf("ALTER TABLE %s CHANGE %s %s %s NULL", t.name, t.cols[i].name, to, binaryKind.ddl))
		t.cols[i] = ddlCol{name: to, kind: binaryKind}
	}
	for range 1 + w.rng.IntN(2) {
		w.insert(t)
	}
}

func newDDLWorkload(t *testing.T, db *sql.DB, seed uint64) *ddlWorkload {
	w := &ddlWorkload{t: t, db: db, rng: rand.New(rand.NewPCG(seed, 16)), want: map[string]ddlRow{}}
	w.tables = []*ddlTable{w.create("p", true), w.create("a", false), w.create("b", false)}
	for _, tb := range w.tables {
		w.insert(tb)
	}
	return w
}

// checkDDLEvents compares every delivered event with the rows written;
// duplicates (at-least-once after a kill) must be identical.
func checkDDLEvents(t *testing.T, path string, events []event.Event, want map[string]ddlRow) {
	t.Helper()
	seen := map[string]bool{}
	for _, e := range events {
		var d struct {
			Table string                     `json:"table"`
			After map[string]json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			t.Fatal(err)
		}
		id := string(d.After["id"])
		row, ok := want[id]
		if !ok {
			t.Errorf("%s: event for id %s, never written", path, id)
			continue
		}
		seen[id] = true
		if d.Table != row.table {
			t.Errorf("%s: id %s in table %s, written to %s", path, id, d.Table, row.table)
		}
		if len(d.After) != len(row.cols)+1 {
			t.Errorf("%s: id %s (%s) has columns %v, want id and %v", path, id, row.table, keysOf(d.After), keysOf(row.cols))
		}
		for col, v := range row.cols {
			if problem := compareValue(d.After[col], v, row.kinds[col]); problem != "" {
				t.Errorf("%s: id %s (%s) column %s %s: %s", path, id, row.table, col, row.kinds[col].ddl, problem)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%s: %d rows delivered, %d written", path, len(seen), len(want))
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// waitDistinct waits until events of n distinct ids arrived.
func waitDistinct(t *testing.T, r *receiver.Receiver, n int) []event.Event {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("%d distinct rows", n), func() bool {
		ids := map[string]bool{}
		for _, e := range r.Events() {
			var d struct {
				After map[string]json.RawMessage `json:"after"`
			}
			_ = json.Unmarshal(e.Data(), &d)
			ids[string(d.After["id"])] = true
		}
		return len(ids) >= n
	})
	return r.Events()
}

// TestMinimalMetadataDDLBurst: on a server without column metadata, a
// random burst of every DDL kind (ADD/DROP/MODIFY/CHANGE/RENAME COLUMN,
// RENAME TABLE, DROP + CREATE, CREATE ... LIKE, a partitioned table) with
// rows between is decoded equal to SELECT live, while ferry is killed -9
// in the middle of the burst and restarted; then again by a replay from
// before the burst, and after `checkpoint set` into the past.
func TestMinimalMetadataDDLBurst(t *testing.T) {
	t.Parallel()
	seed := ddlSeed(t)
	srv := minimalServer(t)
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	w := newDDLWorkload(t, db, seed)
	live := receiver.New()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, live)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	steps := envInt(t, "DDL_STEPS", 60)
	for i := range steps {
		w.step()
		if i%20 == 10 { // kill -9 mid-burst, restart from the checkpoint
			p.kill()
			p = startFerry(t, cfg)
		}
	}
	checkDDLEvents(t, "live with kill -9", waitDistinct(t, live, len(w.want)), w.want)
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exit %d: %s", code, tailLines(p.stderr.String(), 5))
	}

	// A replay reads the burst again with the history recorded live; one
	// with a fresh state directory rebuilds the history from the DDL.
	replayCheck := func(path, cfg string, r *receiver.Receiver) {
		t.Helper()
		before := r.Count()
		if code, _, errOut := runFerry(t, 2*time.Minute, "replay", "-c", cfg, "--source", "db", "--from", start); code != 0 {
			t.Fatalf("%s: exit %d: %s", path, code, tailLines(errOut, 5))
		}
		checkDDLEvents(t, path, r.Events()[before:], w.want)
	}
	replayCheck("replay", cfg, live)
	other := receiver.New()
	replayCheck("replay without a history", pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, other)}.yaml(t, t.TempDir()), other)

	before := live.Count()
	if code, _, errOut := runFerry(t, 30*time.Second, "checkpoint", "set", "--source", "db", "-c", cfg, start); code != 0 {
		t.Fatalf("checkpoint set: %d %s", code, errOut)
	}
	p = startFerry(t, cfg)
	eventually(t, 90*time.Second, "the rows again", func() bool { return live.Count() >= before+len(w.want) })
	checkDDLEvents(t, "checkpoint set into the past", live.Events()[before:], w.want)
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exit %d", code)
	}
}

// TestRowMetadataSwitchMidStream: a server switched MINIMAL -> FULL ->
// MINIMAL while ferry streams (SET GLOBAL binlog_row_metadata) is decoded
// right throughout: without names from the history, with them from the
// table map; a DDL in each stretch is followed.
func TestRowMetadataSwitchMidStream(t *testing.T) {
	t.Parallel()
	srv := minimalServer(t)
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	ctx := t.Context()
	exec1(t, db, "CREATE TABLE t (id INT PRIMARY KEY, u INT UNSIGNED, e ENUM('x','y'), s VARCHAR(5) CHARACTER SET latin1)",
		"INSERT INTO t VALUES (1, 4294967295, 'y', 'café')")
	r := receiver.New()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	waitEvents(t, r, 1)
	set := func(v string) {
		// A new connection after the switch: the setting is read per session.
		if err := srv.Exec(ctx, "SET GLOBAL binlog_row_metadata = "+v); err != nil {
			t.Fatal(err)
		}
	}
	set("FULL")
	exec1(t, srv.DB(t, name), "ALTER TABLE t ADD COLUMN b BIGINT UNSIGNED AFTER id", "INSERT INTO t VALUES (2, 18446744073709551615, 1, 'x', 'é')")
	set("MINIMAL")
	exec1(t, srv.DB(t, name), "ALTER TABLE t RENAME COLUMN s TO s2", "INSERT INTO t VALUES (3, 7, 2, 'y', '€')")
	events := sortBySource(t, waitEvents(t, r, 3)) // rows 2 and 3 may share a batch, sent concurrently
	want := []string{
		`{"e":"y","id":1,"s":"café","u":4294967295}`,
		`{"b":"18446744073709551615","e":"x","id":2,"s":"é","u":1}`,
		`{"b":7,"e":"y","id":3,"s2":"€","u":2}`,
	}
	for i, e := range events {
		var d struct {
			After json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(d.After, &m)
		got, _ := json.Marshal(m)
		if string(got) != want[i] {
			t.Errorf("row %d: %s, want %s", i+1, got, want[i])
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// TestUnparseableDDLQuarantinesItsTable: a DDL the parser cannot read (a
// MariaDB-only clause) quarantines only its table: its rows become dead
// letters naming the DDL and its position, the other table streams on,
// and `ferry schema resync` brings the table back.
func TestUnparseableDDLQuarantinesItsTable(t *testing.T) {
	t.Parallel()
	srv := minimalServer(t)
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	exec1(t, db, "CREATE TABLE q (id INT PRIMARY KEY)", "CREATE TABLE ok (id INT PRIMARY KEY)")
	r := receiver.New()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, r), admin: freeAddr(t)}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	exec1(t, db, "ALTER TABLE q WAIT 5 ADD COLUMN v INT", "INSERT INTO q VALUES (1, 1)", "INSERT INTO ok VALUES (1)",
		"INSERT INTO q VALUES (2, 2)", "INSERT INTO ok VALUES (2)")
	events := waitEvents(t, r, 2)
	for _, e := range events {
		if d := decode(t, e); d.Table != "ok" {
			t.Errorf("an event of %s was delivered: %s", d.Table, e.Data())
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(p.stderr.String(), "quarantined") || !strings.Contains(p.stderr.String(), "WAIT 5") {
		t.Errorf("no log of the quarantine naming the DDL:\n%s", tailLines(p.stderr.String(), 10))
	}
	code, out, errOut := runFerry(t, 30*time.Second, "dlq", "list", "--json", "-c", cfg)
	if code != 0 {
		t.Fatalf("dlq list: %d %s", code, errOut)
	}
	if n := strings.Count(out, `"rule":"schema-quarantine"`); n != 2 || !strings.Contains(out, "WAIT 5") || !strings.Contains(out, "mysql-bin.") {
		t.Errorf("dead letters: %d of the quarantine, want 2 naming the DDL and its position:\n%s", n, out)
	}

	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfg, "--source", "db", "--table", name+".q")
	if code != 0 {
		t.Fatalf("schema resync: %d %s %s", code, out, errOut)
	}
	p = startFerry(t, cfg)
	exec1(t, db, "INSERT INTO q VALUES (3, 3)")
	events = waitEvents(t, r, 3)
	if d := decode(t, events[2]); d.Table != "q" || d.After["v"] != float64(3) {
		t.Errorf("after resync: %s", events[2].Data())
	}
	// The running ferry holds the store: show goes through its admin API.
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "show", "-c", cfg, "--source", "db", "--table", name+".q", "--json")
	if code != 0 {
		t.Fatalf("schema show: %d %s", code, errOut)
	}
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v struct{ Origin, State, DDL string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("schema show line %q: %v", l, err)
		}
		if strings.Contains(v.DDL, "WAIT 5") {
			v.Origin += "(WAIT 5)"
		}
		states = append(states, v.Origin+"/"+v.State)
	}
	// The DROP DATABASE of newDB (before the CREATE) comes first; the
	// resync lifted the quarantine in place (nothing changed q since); the
	// base snapshot may come after it (the ALTER may be older than the base).
	if want := []string{"ddl/dropped", "ddl/present", "resync(WAIT 5)/present"}; !slices.Equal(states[:min(3, len(states))], want) ||
		slices.Contains(states, "ddl/quarantined") {
		t.Errorf("schema show: %v, want %v:\n%s", states, want, out)
	}

	// Again while ferry runs: the resync goes through its admin API and
	// takes effect at the stream's read position.
	exec1(t, db, "ALTER TABLE q NOWAIT ADD COLUMN w INT", "INSERT INTO q VALUES (4, 4, 4)", "INSERT INTO ok VALUES (3)")
	events = waitEvents(t, r, 4)
	if d := decode(t, events[3]); d.Table != "ok" {
		t.Errorf("after the second quarantine: %s", events[3].Data())
	}
	code, out, errOut = runFerry(t, 30*time.Second, "schema", "resync", "-c", cfg, "--source", "db", "--table", name+".q")
	if code != 0 || !strings.Contains(out, "in force from mysql-bin.") {
		t.Fatalf("live schema resync: %d %s %s", code, out, errOut)
	}
	exec1(t, db, "INSERT INTO q VALUES (5, 5, 5)")
	events = waitEvents(t, r, 5)
	if d := decode(t, events[4]); d.Table != "q" || d.After["w"] != float64(5) {
		t.Errorf("after the live resync: %s", events[4].Data())
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
}
