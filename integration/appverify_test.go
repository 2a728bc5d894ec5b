package integration

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestAppWorkloadVerified runs the application-like workload (appLoad)
// while Ferry, a separate process, is killed (-9) and stopped (SIGTERM) and
// restarted, and the HTTP sink fails; then it rebuilds every table from
// the delivered events and compares it with SELECT, row by row, and checks
// event ids and per-key order.
//
// CI runs it for APPLOAD_SECONDS (default 20 s of workload); scripts/
// verify.sh runs it long. APPLOAD_SEED replays a run: the seed drives the
// workload and the faults (timing still varies).
func TestAppWorkloadVerified(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("APPLOAD_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("APPLOAD_SEED=%q: %v", s, err)
		}
		seed = n
	}
	seconds := envInt(t, "APPLOAD_SECONDS", 20)
	rate := envInt(t, "APPLOAD_RATE", 40) // units of work per second; 0: as fast as it goes
	t.Logf("seed %d (APPLOAD_SEED=%d replays it), %d s of workload at %d units/s", seed, seed, seconds, rate)

	name, db := newDB(t, shared)
	load := &appLoad{db: db, rng: rand.New(rand.NewPCG(seed, 1)), name: name, skip: map[string]bool{}}
	if s := os.Getenv("APPLOAD_SKIP"); s != "" {
		for _, class := range strings.Split(s, ",") {
			load.skip[strings.TrimSpace(class)] = true
		}
		t.Logf("APPLOAD_SKIP: not generating %v", load.skip)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := load.setup(ctx); err != nil {
		t.Fatal(err)
	}
	r := receiver.New()
	cfg := pipelineConfig{server: shared, db: name, start: binlogPos(t, shared), url: receiver.Start(t, r), mode: "batch",
		extra: "    max_tx_buffer: 300\n"}.yaml(t, t.TempDir())
	f := &appFaults{t: t, rng: rand.New(rand.NewPCG(seed, 2)), cfg: cfg, recv: r}
	f.ferry = startFerry(t, cfg)

	loadDone := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(time.Duration(seconds) * time.Second)
		var pace <-chan time.Time
		if rate > 0 {
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			pace = tick.C
		}
		for time.Now().Before(deadline) {
			if pace != nil {
				<-pace
			}
			if err := load.step(ctx); err != nil {
				loadDone <- err
				return
			}
		}
		loadDone <- nil
	}()
	f.run(loadDone)
	r.SetOutage(false)
	if !f.ferry.running() {
		f.ferry = startFerry(t, cfg)
	}
	t.Logf("%d units of work (%v); %d faults: %v", load.txs.Load(), load.classes, len(f.done), f.done)

	waitForEndMarker(t, db, r, f.ferry)
	reportDiffs(t, newAppVerifier(load).settle(t, r))
	events := r.Events()
	verifyDuplicatesIdentical(t, events)
	for _, problem := range checkIDsAndOrder(t, events) {
		t.Error(problem)
	}
	if code := f.ferry.stop(); code != 0 {
		t.Errorf("final ferry exit code %d", code)
	}
	if t.Failed() {
		t.Logf("replay with APPLOAD_SEED=%d", seed)
	}
}

// waitForEndMarker writes a row to load_end and waits for its event: then
// Ferry has read everything the load wrote before it.
func waitForEndMarker(t *testing.T, db *sql.DB, r *receiver.Receiver, p *ferryProc) {
	t.Helper()
	exec1(t, db, "INSERT INTO load_end VALUES (1)")
	ended := func() bool {
		for _, e := range r.Events() {
			if strings.Contains(string(e.Data()), `"table":"load_end"`) {
				return true
			}
		}
		return false
	}
	for wait := time.Now(); !ended(); time.Sleep(500 * time.Millisecond) {
		if time.Since(wait) > 3*time.Minute {
			t.Fatalf("the end marker did not arrive within 3 minutes; ferry stderr:\n%s", tailLines(p.stderr.String(), 30))
		}
	}
}

// settle compares once deliveries pause, until the tables are equal or
// nothing arrived for 10 s, and returns the last differences.
func (v *appVerifier) settle(t *testing.T, r *receiver.Receiver) []string {
	var diffs []string
	for seen, quiet := -1, time.Now(); ; time.Sleep(time.Second) {
		if n := r.Count(); n != seen {
			seen, quiet = n, time.Now()
			continue
		}
		diffs = v.compare(t, r.Events())
		if len(diffs) == 0 || time.Since(quiet) > 10*time.Second {
			return diffs
		}
	}
}

// appFaults breaks Ferry and its sink while the workload runs.
type appFaults struct {
	t     *testing.T
	rng   *rand.Rand
	cfg   string
	recv  *receiver.Receiver
	ferry *ferryProc
	done  []string
}

func (f *appFaults) run(loadDone chan error) {
	for {
		select {
		case err := <-loadDone:
			if err != nil {
				f.t.Fatalf("workload: %v", err)
			}
			return
		case <-time.After(time.Duration(1500+f.rng.IntN(2500)) * time.Millisecond):
		}
		if !f.ferry.running() {
			f.t.Fatalf("ferry exited by itself; stderr:\n%s", tailLines(f.ferry.stderr.String(), 30))
		}
		fault := []string{"kill -9", "kill -9", "sigterm", "http 503", "http errors"}[f.rng.IntN(5)]
		switch fault {
		case "kill -9":
			f.ferry.kill()
			f.ferry = startFerry(f.t, f.cfg)
		case "sigterm":
			if code := f.ferry.stop(); code != 0 {
				f.t.Errorf("ferry exit code %d after SIGTERM; stderr:\n%s", code, tailLines(f.ferry.stderr.String(), 20))
			}
			f.ferry = startFerry(f.t, f.cfg)
		case "http 503":
			f.recv.SetOutage(true)
			time.Sleep(time.Duration(300+f.rng.IntN(1500)) * time.Millisecond)
			f.recv.SetOutage(false)
		case "http errors":
			f.recv.FailNext(1+f.rng.IntN(5), 500, "")
		}
		f.done = append(f.done, fault)
	}
}

// delivered is one distinct event, decoded with exact numbers.
type delivered struct {
	id, op, table string
	key           string // the primary key, canonical JSON
	before, after map[string]any
	file          string
	pos           uint64
	txID          string
	order         int
	oldKey        bool
	arrival       int
}

func decodeDelivered(e event.Event, arrival int) (delivered, error) {
	var d struct {
		Op     string         `json:"op"`
		Table  string         `json:"table"`
		PK     map[string]any `json:"pk"`
		Before map[string]any `json:"before"`
		After  map[string]any `json:"after"`
		Source struct {
			File string `json:"file"`
			Pos  uint64 `json:"pos"`
		} `json:"source"`
		Tx struct {
			ID    string `json:"id"`
			Order int    `json:"order"`
		} `json:"tx"`
	}
	dec := json.NewDecoder(bytes.NewReader(e.Data()))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return delivered{}, fmt.Errorf("event %s: %w", e.ID(), err)
	}
	key, _ := json.Marshal(d.PK)
	return delivered{id: e.ID(), op: d.Op, table: d.Table, key: string(key), before: d.Before, after: d.After,
		file: d.Source.File, pos: d.Source.Pos, txID: d.Tx.ID, order: d.Tx.Order,
		oldKey: strings.HasSuffix(e.ID(), "/old-key"), arrival: arrival}, nil
}

// binlogOrder orders events as the binlog did; an update's old-key delete
// comes just before the update.
func binlogOrder(a, b delivered) int {
	if c := cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.pos, b.pos), cmp.Compare(a.order, b.order)); c != 0 {
		return c
	}
	switch {
	case a.oldKey && !b.oldKey:
		return -1
	case b.oldKey && !a.oldKey:
		return 1
	}
	return 0
}

// appVerifier rebuilds the load's tables from events.
type appVerifier struct {
	load *appLoad
}

func newAppVerifier(l *appLoad) *appVerifier { return &appVerifier{load: l} }

// distinct returns the first copy of every event id, in source order.
func distinctEvents(t *testing.T, events []event.Event) []delivered {
	seen := map[string]bool{}
	var out []delivered
	for i, e := range events {
		if seen[e.ID()] {
			continue
		}
		seen[e.ID()] = true
		d, err := decodeDelivered(e, i)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, binlogOrder)
	return out
}

// finalName follows the renames of table.
func (v *appVerifier) finalName(table string) string {
	v.load.mu.Lock()
	defer v.load.mu.Unlock()
	for i := 0; i < 100; i++ {
		to, ok := v.load.renames[table]
		if !ok {
			break
		}
		table = to
	}
	return table
}

// rebuild applies the events in source order: table -> key -> row.
func (v *appVerifier) rebuild(events []delivered) (map[string]map[string]map[string]any, []string) {
	tables := map[string]map[string]map[string]any{}
	var problems []string
	for _, d := range events {
		name := v.finalName(d.table)
		rows := tables[name]
		if rows == nil {
			rows = map[string]map[string]any{}
			tables[name] = rows
		}
		for _, img := range []map[string]any{d.before, d.after} {
			for col, val := range img {
				if s, ok := val.(string); ok && strings.HasPrefix(s, rolledBackMark) {
					problems = append(problems, fmt.Sprintf("event %s (%s %s) carries %s=%q, written by a rolled-back transaction or savepoint", d.id, d.op, d.table, col, s))
				}
			}
		}
		switch d.op {
		case "create", "update":
			rows[d.key] = d.after
		case "delete":
			delete(rows, d.key)
		case "truncate":
			clear(rows)
		default:
			problems = append(problems, fmt.Sprintf("event %s: unexpected op %q", d.id, d.op))
		}
	}
	return tables, problems
}

// compare rebuilds the tables from events and returns every difference
// with SELECT.
func (v *appVerifier) compare(t *testing.T, events []event.Event) []string {
	built, diffs := v.rebuild(distinctEvents(t, events))
	v.load.mu.Lock()
	live := append([]string{"audit", "load_end"}, v.load.tables...)
	defaults := maps.Clone(v.load.defaults)
	v.load.mu.Unlock()
	for _, table := range live {
		want, err := selectRows(v.load.db, table)
		if err != nil {
			t.Fatal(err)
		}
		got := built[table]
		delete(built, table)
		for key, row := range want {
			b, ok := got[key]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: in the table, never delivered (row %v)", table, key, row))
				continue
			}
			for col, val := range row {
				ev, present := b[col]
				var have *string
				if present {
					have = text(ev)
				} else if def, ok := defaults[table+"."+col]; ok {
					have = &def // added later with a default; no event since
				} else {
					diffs = append(diffs, fmt.Sprintf("%s %s: column %s missing from the delivered row %v", table, key, col, b))
					continue
				}
				if !eqText(have, val) {
					diffs = append(diffs, fmt.Sprintf("%s %s: %s = %s delivered, %s in the table", table, key, col, show(have), show(val)))
				}
			}
		}
		for key, b := range got {
			if _, ok := want[key]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: delivered row %v is not in the table", table, key, b))
			}
		}
	}
	for table, rows := range built {
		if len(rows) > 0 {
			diffs = append(diffs, fmt.Sprintf("table %s: %d delivered rows, but the load has no such table", table, len(rows)))
		}
	}
	slices.Sort(diffs)
	return diffs
}

// selectRows reads table: canonical primary key JSON -> column -> text
// (nil for NULL).
func selectRows(db *sql.DB, table string) (map[string]map[string]*string, error) {
	rows, err := db.Query("SELECT * FROM `" + table + "`")
	if err != nil {
		return nil, fmt.Errorf("select %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]*string{}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := map[string]*string{}
		for i, c := range cols {
			if vals[i].Valid {
				s := vals[i].String
				row[c] = &s
			} else {
				row[c] = nil
			}
		}
		id, _ := strconv.ParseInt(*row["id"], 10, 64)
		key, _ := json.Marshal(map[string]any{"id": id})
		out[string(key)] = row
	}
	return out, rows.Err()
}

func text(v any) *string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return &x
	case json.Number:
		s := x.String()
		return &s
	default:
		s := fmt.Sprint(x)
		return &s
	}
}

func eqText(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// reportDiffs fails the test with a count of differences per table and
// kind, and a few examples of each.
func reportDiffs(t *testing.T, diffs []string) {
	t.Helper()
	kinds := map[string][]string{}
	for _, d := range diffs {
		table, rest, _ := strings.Cut(d, " ")
		kind := rest
		if _, after, ok := strings.Cut(rest, ": "); ok {
			kind = after
		}
		for _, cut := range []string{" = ", " (row", " map[", " row "} {
			if i := strings.Index(kind, cut); i >= 0 {
				kind = kind[:i]
			}
		}
		kinds[table+": "+kind] = append(kinds[table+": "+kind], d)
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		ex := kinds[k]
		t.Errorf("%d x %s, e.g.:\n  %s", len(ex), k, strings.Join(ex[:min(3, len(ex))], "\n  "))
	}
}

// checkIDsAndOrder checks that every event id is <tx id>#<ordinal> (plus
// /old-key for a key-changing update's delete), that the ordinals of one
// transaction are consecutive, and that each key's events first arrived in
// binlog order.
func checkIDsAndOrder(t *testing.T, events []event.Event) []string {
	var problems []string
	all := distinctEvents(t, events)
	ordinals := map[string][]int{}
	for _, d := range all {
		want := d.txID + "#" + strconv.Itoa(d.order)
		if d.oldKey {
			want += "/old-key"
		}
		if d.id != want {
			problems = append(problems, fmt.Sprintf("event id %s, want %s (tx.id and tx.order of its data)", d.id, want))
		}
		if !d.oldKey {
			ordinals[d.txID] = append(ordinals[d.txID], d.order)
		}
	}
	for tx, ords := range ordinals {
		slices.Sort(ords)
		for i := 1; i < len(ords); i++ {
			if ords[i] != ords[i-1]+1 {
				problems = append(problems, fmt.Sprintf("transaction %s: ordinals %v are not consecutive", tx, ords))
				break
			}
		}
	}
	// Per key, first arrivals in source order.
	byArrival := slices.Clone(all)
	slices.SortFunc(byArrival, func(a, b delivered) int { return cmp.Compare(a.arrival, b.arrival) })
	last := map[string]delivered{}
	for _, d := range byArrival {
		if d.op == "truncate" {
			continue
		}
		k := d.table + " " + d.key
		if prev, ok := last[k]; ok && binlogOrder(prev, d) > 0 {
			problems = append(problems, fmt.Sprintf("%s: event %s arrived after %s, which the binlog has later", k, d.id, prev.id))
		}
		last[k] = d
	}
	return problems
}
