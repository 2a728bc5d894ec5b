package integration

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/mariadbtest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// colKind is one column type of the value contract (README, "Column
// values"): its DDL, literals to write (edge values first), and the SQL
// expression whose text is what Ferry must emit for it, so that MariaDB
// itself computes the expected value.
type colKind struct {
	ddl    string
	values []string
	want   string // with %s for the column; text of the expected JSON value
	json   bool   // compare as JSON documents
	set    bool   // a SET: the JSON array joined by ","
}

var colKinds = []colKind{
	{ddl: "TINYINT", values: []string{"-128", "127", "0", "-1"}, want: "CAST(%s AS CHAR)"},
	{ddl: "TINYINT UNSIGNED", values: []string{"255", "0", "128"}, want: "CAST(%s AS CHAR)"},
	{ddl: "SMALLINT", values: []string{"-32768", "32767"}, want: "CAST(%s AS CHAR)"},
	{ddl: "SMALLINT UNSIGNED", values: []string{"65535", "32768"}, want: "CAST(%s AS CHAR)"},
	{ddl: "MEDIUMINT", values: []string{"-8388608", "8388607"}, want: "CAST(%s AS CHAR)"},
	{ddl: "MEDIUMINT UNSIGNED", values: []string{"16777215", "8388608"}, want: "CAST(%s AS CHAR)"},
	{ddl: "INT", values: []string{"-2147483648", "2147483647"}, want: "CAST(%s AS CHAR)"},
	{ddl: "INT UNSIGNED", values: []string{"4294967295", "2147483648"}, want: "CAST(%s AS CHAR)"},
	{ddl: "BIGINT", values: []string{"-9223372036854775808", "9223372036854775807", "9007199254740993", "-5"}, want: "CAST(%s AS CHAR)"},
	{ddl: "BIGINT UNSIGNED", values: []string{"18446744073709551615", "9223372036854775808", "7"}, want: "CAST(%s AS CHAR)"},
	{ddl: "YEAR", values: []string{"1901", "2155", "2024"}, want: "CAST(%s AS CHAR)"},
	{ddl: "BIT(1)", values: []string{"b'1'", "b'0'"}, want: "CAST(%s + 0 AS CHAR)"},
	{ddl: "BIT(17)", values: []string{"b'10000000000000001'", "b'1'"}, want: "CAST(%s + 0 AS CHAR)"},
	{ddl: "BIT(64)", values: []string{"b'1111111111111111111111111111111111111111111111111111111111111111'", "b'101'"}, want: "CAST(%s + 0 AS CHAR)"},
	{ddl: "DECIMAL(30,10)", values: []string{"'-12345678901234567890.1234567891'", "'0.0000000001'", "0"}, want: "CAST(%s AS CHAR)"},
	{ddl: "DECIMAL(5,0) UNSIGNED", values: []string{"99999", "0"}, want: "CAST(%s AS CHAR)"},
	{ddl: "DECIMAL(4,2)", values: []string{"-99.99", "0.5"}, want: "CAST(%s AS CHAR)"},
	{ddl: "DOUBLE", values: []string{"0.5", "-1024", "0"}, want: "CAST(%s AS CHAR)"},
	{ddl: "DATE", values: []string{"'1000-01-01'", "'9999-12-31'", "'2024-02-29'"}, want: "CAST(%s AS CHAR)"},
	{ddl: "DATETIME", values: []string{"'1000-01-01 00:00:00'", "'9999-12-31 23:59:59'"}, want: "REPLACE(CAST(%s AS CHAR), ' ', 'T')"},
	{ddl: "DATETIME(3)", values: []string{"'2024-02-29 23:59:59.999'", "'2000-01-01 00:00:00.001'"}, want: "REPLACE(CAST(%s AS CHAR), ' ', 'T')"},
	{ddl: "DATETIME(6)", values: []string{"'9999-12-31 23:59:59.999999'"}, want: "REPLACE(CAST(%s AS CHAR), ' ', 'T')"},
	{ddl: "TIMESTAMP(4) NULL", values: []string{"'2038-01-18 03:14:07.9999'", "'2000-01-01 00:00:01.0001'"}, want: "CONCAT(REPLACE(CAST(CONVERT_TZ(%s, @@session.time_zone, '+00:00') AS CHAR), ' ', 'T'), 'Z')"},
	{ddl: "TIME", values: []string{"'-838:59:59'", "'838:59:59'", "'00:00:00'"}, want: "CAST(%s AS CHAR)"},
	{ddl: "TIME(2)", values: []string{"'-00:00:01.5'", "'100:00:00.99'"}, want: "CAST(%s AS CHAR)"},
	{ddl: "CHAR(5)", values: []string{"'ab'", "''", "'ü€🚀'"}, want: "%s"},
	{ddl: "VARCHAR(300)", values: []string{"'héllo'", "REPEAT('x', 300)"}, want: "%s"},
	{ddl: "TEXT", values: []string{"'line\\nbreak'", "''"}, want: "%s"},
	{ddl: "VARCHAR(10) CHARACTER SET latin1", values: []string{"'café'", "'€'"}, want: "%s"},
	{ddl: "BINARY(4)", values: []string{"X'01'", "X'00000000'", "X'FFFFFFFF'"}, want: "REPLACE(TO_BASE64(%s), '\\n', '')"},
	{ddl: "VARBINARY(20)", values: []string{"X'00FF'", "X''"}, want: "REPLACE(TO_BASE64(%s), '\\n', '')"},
	{ddl: "BLOB", values: []string{"X'0001020304'", "REPEAT(X'AB', 100)"}, want: "REPLACE(TO_BASE64(%s), '\\n', '')"},
	{ddl: "MEDIUMBLOB", values: []string{"X'FF'"}, want: "REPLACE(TO_BASE64(%s), '\\n', '')"},
	{ddl: "ENUM('a','b','c')", values: []string{"'a'", "'c'"}, want: "%s"},
	{ddl: "SET('x','y','z')", values: []string{"'x,z'", "''", "'x,y,z'"}, want: "%s", set: true},
	{ddl: "INET6", values: []string{"'::1'", "'2001:db8::ff00:42:8329'", "'::ffff:192.0.2.1'"}, want: "REPLACE(TO_BASE64(CAST(%s AS BINARY(16))), '\\n', '')"},
	{ddl: "UUID", values: []string{"'123e4567-e89b-12d3-a456-426655440000'", "'00000000-0000-0000-0000-000000000001'"}, want: "REPLACE(TO_BASE64(CAST(%s AS BINARY(16))), '\\n', '')"},
	{ddl: "JSON", values: []string{`'{"a": [1, 2.5, "s"], "b": null}'`, "'[]'", "'\"str\"'", "'12345678901234567890'"}, want: "%s", json: true},
}

// TestDecodingEqualsSelect is a generated property: random tables with
// columns of every supported type, in random orders and combinations,
// nullable or not, filled with edge values; every value Ferry emits from
// the live stream, a checkpoint set into the past, a replay and a backfill
// must equal what SELECT returns,
// as the README's value contract spells it. DECODE_SEED replays a run.
func TestDecodingEqualsSelect(t *testing.T) { decodingEqualsSelect(t, shared) }

// TestDecodingEqualsSelectMinimal is the same property on a server that
// logs no column metadata (binlog_row_metadata=MINIMAL, what MySQL 5.7 and
// MariaDB before 10.5 give): names, signedness, character sets, ENUM/SET
// labels and keys come from the schema history, built from the CREATE
// TABLE statements read from the binlog.
func TestDecodingEqualsSelectMinimal(t *testing.T) {
	t.Parallel()
	decodingEqualsSelect(t, minimalServer(t))
}

func decodingEqualsSelect(t *testing.T, srv *mariadbtest.Server) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("DECODE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DECODE_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("seed %d (DECODE_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	start := binlogPos(t, srv)
	name, db := newDB(t, srv)
	tables := envInt(t, "DECODE_TABLES", 12)
	specs := make([][]column, tables)
	for ti := range specs {
		specs[ti] = randomColumns(rng)
		exec1(t, db, createTableSQL(ti, specs[ti], rng))
	}
	for ti, cols := range specs {
		for row := 1; row <= 4; row++ {
			exec1(t, db, insertSQL(ti, row, cols, rng))
		}
	}
	want := map[string]map[string]*string{} // "t<i>/<id>" -> column -> expected text
	for ti, cols := range specs {
		selectExpected(t, db, ti, cols, want)
	}

	live := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, live)}.yaml(t, dir)
	p := startFerry(t, cfg)
	checkDecoded(t, "stream", waitEvents(t, live, len(want)), want, specs)
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exit %d", code)
	}
	if code, _, errOut := runFerry(t, 30*time.Second, "checkpoint", "set", "--source", "db", "-c", cfg, start); code != 0 {
		t.Fatalf("checkpoint set: %d %s", code, errOut)
	}
	p = startFerry(t, cfg)
	checkDecoded(t, "checkpoint set into the past", waitEvents(t, live, 2*len(want))[len(want):], want, specs)
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exit %d", code)
	}

	other := receiver.New()
	cfg2 := pipelineConfig{server: srv, db: name, start: start, url: receiver.Start(t, other)}.yaml(t, t.TempDir())
	if code, _, errOut := runFerry(t, time.Minute, "replay", "-c", cfg2, "--source", "db", "--from", start); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	checkDecoded(t, "replay", other.Events(), want, specs)
	for ti := range specs {
		before := other.Count()
		if code, _, errOut := runFerry(t, time.Minute, "backfill", "-c", cfg2, "--source", "db", "--table", fmt.Sprintf("%s.t%d", name, ti)); code != 0 {
			t.Fatalf("backfill t%d: exit %d: %s", ti, code, errOut)
		}
		checkDecoded(t, "backfill", other.Events()[before:], rowsOf(want, ti), specs)
	}
	if t.Failed() {
		t.Logf("replay with DECODE_SEED=%d", seed)
	}
}

// column is one generated column.
type column struct {
	colKind
	nullable bool
}

// randomColumns picks 3 to 14 column kinds, repeats allowed, in random
// order, each nullable or not.
func randomColumns(rng *rand.Rand) []column {
	cols := make([]column, 3+rng.IntN(12))
	for i := range cols {
		k := colKinds[rng.IntN(len(colKinds))]
		cols[i] = column{colKind: k, nullable: strings.Contains(k.ddl, " NULL") || rng.IntN(2) == 0}
	}
	return cols
}

// createTableSQL puts the key column at a random place among the others.
func createTableSQL(ti int, cols []column, rng *rand.Rand) string {
	defs := make([]string, 0, len(cols)+1)
	for i, c := range cols {
		null := " NOT NULL"
		if c.nullable {
			null = ""
		}
		if strings.HasSuffix(c.ddl, " NULL") {
			null = ""
		}
		defs = append(defs, fmt.Sprintf("c%d %s%s", i, c.ddl, null))
	}
	at := rng.IntN(len(defs) + 1)
	defs = append(defs[:at], append([]string{"id INT NOT NULL PRIMARY KEY"}, defs[at:]...)...)
	return fmt.Sprintf("CREATE TABLE t%d (%s) CHARACTER SET utf8mb4", ti, strings.Join(defs, ", "))
}

// insertSQL writes row id with edge values, and NULL in nullable columns
// now and then.
func insertSQL(ti, id int, cols []column, rng *rand.Rand) string {
	names, vals := []string{"id"}, []string{strconv.Itoa(id)}
	for i, c := range cols {
		names = append(names, fmt.Sprintf("c%d", i))
		v := c.values[(id-1+rng.IntN(2))%len(c.values)]
		if c.nullable && rng.IntN(4) == 0 {
			v = "NULL"
		}
		vals = append(vals, v)
	}
	return fmt.Sprintf("INSERT INTO t%d (%s) VALUES (%s)", ti, strings.Join(names, ", "), strings.Join(vals, ", "))
}

// selectExpected asks MariaDB for the text of every expected value of
// table ti: "t<ti>/<id>" -> column -> text, or nil for NULL.
func selectExpected(t *testing.T, db *sql.DB, ti int, cols []column, want map[string]map[string]*string) {
	t.Helper()
	exprs := []string{"id"}
	for i, c := range cols {
		exprs = append(exprs, fmt.Sprintf(c.want, fmt.Sprintf("c%d", i)))
	}
	rows, err := db.Query(fmt.Sprintf("SELECT %s FROM t%d", strings.Join(exprs, ", "), ti))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]sql.NullString, len(exprs))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]*string{}
		for i := range cols {
			if v := vals[i+1]; v.Valid {
				row[fmt.Sprintf("c%d", i)] = &v.String
			} else {
				row[fmt.Sprintf("c%d", i)] = nil
			}
		}
		want[fmt.Sprintf("t%d/%s", ti, vals[0].String)] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// rowsOf returns the expected rows of table ti.
func rowsOf(want map[string]map[string]*string, ti int) map[string]map[string]*string {
	out := map[string]map[string]*string{}
	for k, v := range want {
		if strings.HasPrefix(k, fmt.Sprintf("t%d/", ti)) {
			out[k] = v
		}
	}
	return out
}

// checkDecoded compares the after image of every event with SELECT.
func checkDecoded(t *testing.T, path string, events []event.Event, want map[string]map[string]*string, specs [][]column) {
	t.Helper()
	seen := 0
	for _, e := range events {
		var d struct {
			Table string                     `json:"table"`
			After map[string]json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(e.Data(), &d); err != nil {
			t.Fatal(err)
		}
		key := d.Table + "/" + string(d.After["id"])
		row, ok := want[key]
		if !ok {
			t.Errorf("%s: event for %s, which was never written", path, key)
			continue
		}
		seen++
		ti, _ := strconv.Atoi(strings.TrimPrefix(d.Table, "t"))
		for i, c := range specs[ti] {
			col := fmt.Sprintf("c%d", i)
			if problem := compareValue(d.After[col], row[col], c.colKind); problem != "" {
				t.Errorf("%s: %s column %s %s: %s", path, key, col, c.ddl, problem)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%s: %d rows decoded, %d written", path, seen, len(want))
	}
}

// compareValue returns what is wrong with got (raw JSON) against the
// expected text (nil: NULL).
func compareValue(got json.RawMessage, want *string, k colKind) string {
	if got == nil {
		return "missing from the event"
	}
	if want == nil {
		if string(got) != "null" {
			return fmt.Sprintf("%s, want null", got)
		}
		return ""
	}
	switch {
	case k.json:
		var a, b any
		if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(*want), &b) != nil || !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("%s, want the document %s", got, *want)
		}
		return ""
	case k.set:
		var labels []string
		if err := json.Unmarshal(got, &labels); err != nil || strings.Join(labels, ",") != *want {
			return fmt.Sprintf("%s, want the labels of %q", got, *want)
		}
		return ""
	}
	var text string
	if err := json.Unmarshal(got, &text); err != nil {
		// a number: its literal text
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.UseNumber()
		var n json.Number
		if err := dec.Decode(&n); err != nil {
			return fmt.Sprintf("%s is neither a string nor a number", got)
		}
		text = n.String()
	}
	if text != *want {
		return fmt.Sprintf("%s, want %q", got, *want)
	}
	return ""
}
