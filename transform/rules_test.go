package transform

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/common/types"

	"github.com/ferry-cdc/ferry"
)

func orderChange(op ferry.Op) *ferry.Change {
	cols := []string{"id", "customer", "email", "card", "total", "meta", "legacy_json"}
	after := ferry.Row{Columns: cols, Values: []any{int64(42), "Ada", "ada@example.com", "4111111111111111", "10.50",
		json.RawMessage(`{"channel":"web","items":3}`), `{"tier":"gold"}`}}
	c := &ferry.Change{ID: "0-1-9#1", Op: op, Source: "shop-db", DB: "shop", Table: "orders",
		Key: ferry.Row{Columns: []string{"id"}, Values: []any{int64(42)}}, After: after,
		Time:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Binlog: ferry.BinlogCoords{File: "mysql-bin.000001", Pos: 100, GTID: "0-1-9", ServerID: 1, TxID: "0-1-9", TxOrder: 1}}
	if op == ferry.OpDelete {
		c.Before, c.After = after, ferry.Row{}
	}
	return c
}

func mustEngine(t testing.TB, defaultTo []string, rules ...Rule) *Engine {
	t.Helper()
	for i := range rules {
		if rules[i].Path == "" {
			rules[i].Path = "transforms[" + string(rune('0'+i)) + "]"
		}
	}
	e, err := New(Options{TypePrefix: "com.example", DefaultTo: defaultTo, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func data(t *testing.T, e *event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data(), &m); err != nil {
		t.Fatalf("data %s: %v", e.Data(), err)
	}
	return m
}

func TestRuleMatchingFanOutAndDefaults(t *testing.T) {
	e := mustEngine(t, []string{"console"},
		Rule{Name: "placed", When: `table == "orders" && op == "create"`, To: []string{"kafka"},
			Event: EventExprs{Type: `"com.example.order.placed"`, Subject: `string(after.id)`}},
		Rule{Name: "audit", From: []string{"shop-db"}, To: []string{"audit"}},
		Rule{Name: "other-source", From: []string{"crm"}, To: []string{"x"}},
	)
	w := e.NewWorker()
	out := w.Apply(orderChange(ferry.OpCreate), nil)
	if len(out) != 2 || out[0].Rule != "placed" || out[1].Rule != "audit" || out[0].To[0] != "kafka" {
		t.Fatalf("outputs = %+v", out)
	}
	ev := out[0].Event
	if ev.Type() != "com.example.order.placed" || ev.Subject() != "42" || ev.ID() != "0-1-9#1/placed" ||
		ev.Source() != "/ferry/shop-db/shop/orders" || ev.Extensions()["partitionkey"] != "shop.orders/42" {
		t.Fatalf("rule event = %s", ev)
	}
	if out[1].Event.ID() == ev.ID() {
		t.Fatal("two rules matching one change produced the same id")
	}
	if d := data(t, out[1].Event); d["op"] != "create" || d["after"] == nil {
		t.Fatalf("a rule without data carries the default payload, got %v", d)
	}
	// A delete matches only the audit rule; a change no rule matches goes to the defaults.
	if out := w.Apply(orderChange(ferry.OpDelete), nil); len(out) != 1 || out[0].Rule != "audit" {
		t.Fatalf("delete outputs = %+v", out)
	}
	c := orderChange(ferry.OpCreate)
	c.Source = "crm-db"
	if out := w.Apply(c, nil); len(out) != 1 || out[0].Rule != "placed" {
		t.Fatalf("other source: %+v", out)
	}
	c.Table = "customers"
	if out := w.Apply(c, nil); len(out) != 1 || out[0].Rule != "" || out[0].To[0] != "console" {
		t.Fatalf("unmatched change should take the default mapping: %+v", out)
	}
}

func TestDropRule(t *testing.T) {
	e := mustEngine(t, []string{"console"}, Rule{Name: "no-tmp", When: `table.startsWith("tmp_")`, Drop: true})
	c := orderChange(ferry.OpCreate)
	c.Table = "tmp_x"
	if out := e.NewWorker().Apply(c, nil); len(out) != 0 {
		t.Fatalf("dropped change produced %+v", out)
	}
}

func TestHelpersAndData(t *testing.T) {
	e := mustEngine(t, nil, Rule{Name: "pii", To: []string{"s"}, Event: EventExprs{
		Data: `{
			"customer": rename(pick(after, ["id", "customer"]), {"id": "customer_id"}),
			"email_hash": hash(after.email, "pepper"),
			"card": mask(after.card, 4),
			"rest": without(after, ["email", "card", "meta", "legacy_json"]),
			"channel": after.meta.channel,
			"tier": json(after.legacy_json).tier,
			"total": double(after.total),
			"big": 18446744073709551615u,
			"at": timestamp("2026-01-02T03:04:05Z"),
			"fresh": now() > timestamp("2026-01-01T00:00:00Z")
		}`,
		Extensions: map[string]string{"tenant": `"acme"`, "items": `after.meta.items`, "flag": `true`},
	}})
	out := e.NewWorker().Apply(orderChange(ferry.OpCreate), nil)
	if len(out) != 1 || out[0].Err != nil {
		t.Fatalf("outputs = %+v", out)
	}
	got := string(out[0].Event.Data())
	want := `{"at":"2026-01-02T03:04:05Z","big":"18446744073709551615","card":"************1111","channel":"web",` +
		`"customer":{"customer":"Ada","customer_id":42},"email_hash":"` + hashHex("pepper", "ada@example.com") + `","fresh":true,` +
		`"rest":{"customer":"Ada","id":42,"total":"10.50"},"tier":"gold","total":10.5}`
	if got != want {
		t.Fatalf("data =\n%s\nwant\n%s", got, want)
	}
	ext := out[0].Event.Extensions()
	if ext["tenant"] != "acme" || ext["items"] != int32(3) || ext["flag"] != true {
		t.Fatalf("extensions = %#v", ext)
	}
}

func hashHex(salt, v string) string {
	r := hashValue(typesString(v), typesString(salt))
	return string(r.(typesStringT))
}

func TestAttributeOverrides(t *testing.T) {
	e := mustEngine(t, nil, Rule{Name: "r", To: []string{"s"}, Event: EventExprs{
		ID: `"order-" + string(after.id)`, Source: `"/shop/orders"`, Type: `"order.v2"`, Subject: `after.customer`,
		Time: `"2030-05-06T07:08:09Z"`, DataSchema: `"https://schemas.example.com/order.json"`,
		DataContentType: `"text/plain"`, Data: `"order " + string(after.id)`,
		Extensions: map[string]string{"partitionkey": `"customer/" + after.customer`},
	}})
	ev := e.NewWorker().Apply(orderChange(ferry.OpCreate), nil)[0].Event
	if ev.ID() != "order-42" || ev.Source() != "/shop/orders" || ev.Type() != "order.v2" || ev.Subject() != "Ada" ||
		!ev.Time().Equal(time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)) || ev.DataSchema() != "https://schemas.example.com/order.json" ||
		ev.DataContentType() != "text/plain" || string(ev.Data()) != "order 42" || ev.Extensions()["partitionkey"] != "customer/Ada" {
		t.Fatalf("event = %s", ev)
	}
	if err := ev.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeErrorIsThatEventsFailure(t *testing.T) {
	e := mustEngine(t, []string{"console"},
		Rule{Name: "missing-field", To: []string{"s"}, Event: EventExprs{Subject: `string(after.nope)`}},
		Rule{Name: "fine", To: []string{"s"}},
		Rule{Name: "bad-when", When: `after.total > 5`, To: []string{"s"}}, // a string compared with an int
	)
	out := e.NewWorker().Apply(orderChange(ferry.OpCreate), nil)
	if len(out) != 3 || out[0].Err == nil || out[1].Err != nil || out[2].Err == nil {
		t.Fatalf("outputs = %+v", out)
	}
	if !strings.Contains(out[0].Err.Error(), "rule missing-field: subject: no such key: nope") {
		t.Fatalf("error = %v", out[0].Err)
	}
}

func TestCompileErrorsAllAtOnce(t *testing.T) {
	_, err := New(Options{Rules: []Rule{
		{Name: "a", Path: "transforms[0]", When: `op = "create"`, To: []string{"s"}},
		{Name: "b", Path: "transforms[1]", When: `after.id`, Event: EventExprs{Type: `1 + 1`, Extensions: map[string]string{"Bad": `"x"`, "id": `"y"`}}, To: []string{"s"}},
		{Name: "c", Path: "transforms[2]", Outbox: &Outbox{Table: "nodot"}, To: []string{"s"}},
		{Name: "d", Path: "transforms[3]", Drop: true, To: []string{"s"}},
	}})
	var ce CompileErrors
	if !errors.As(err, &ce) {
		t.Fatalf("New = %v", err)
	}
	msg := ce.Error()
	for _, want := range []string{
		"transforms[0].when: rule a: Syntax error",
		"transforms[1].event.type: rule b: evaluates to int, want string",
		"transforms[1].event.extensions.Bad: rule b: invalid extension name",
		"transforms[1].event.extensions.id: rule b: invalid extension name",
		"transforms[2].outbox: rule c: table must be DB.TABLE",
		"transforms[3].drop: rule d: a drop rule cannot also have to:",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestOutbox(t *testing.T) {
	e := mustEngine(t, []string{"console"}, Rule{Name: "outbox", To: []string{"bus"},
		Outbox: &Outbox{Table: "shop.outbox", AggregateType: "aggregate_type", Headers: map[string]string{"traceparent": "trace"}}})
	cols := []string{"id", "aggregate_type", "aggregate_id", "type", "payload", "trace"}
	c := &ferry.Change{ID: "0-1-5#1", Op: ferry.OpCreate, Source: "shop-db", DB: "shop", Table: "outbox", Time: time.Unix(0, 0),
		After: ferry.Row{Columns: cols, Values: []any{"9b2e", "Order", int64(77), "OrderPlaced", json.RawMessage(`{"total":10}`),
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}
	w := e.NewWorker()
	out := w.Apply(c, nil)
	if len(out) != 1 || out[0].Err != nil {
		t.Fatalf("outputs = %+v", out)
	}
	ev := out[0].Event
	if ev.ID() != "9b2e" || ev.Type() != "OrderPlaced" || ev.Subject() != "77" || string(ev.Data()) != `{"total":10}` ||
		ev.Extensions()["partitionkey"] != "77" || ev.Extensions()["aggregatetype"] != "Order" ||
		ev.Extensions()["traceparent"] != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("outbox event = %s", ev)
	}
	del := *c
	del.Op, del.Before, del.After = ferry.OpDelete, c.After, ferry.Row{}
	if out := w.Apply(&del, nil); len(out) != 0 {
		t.Fatalf("deleting an outbox row must emit nothing (not even a default event): %+v", out)
	}
	bad := *c
	bad.After = ferry.Row{Columns: []string{"id"}, Values: []any{"x"}}
	if out := w.Apply(&bad, nil); len(out) != 1 || out[0].Err == nil || !strings.Contains(out[0].Err.Error(), `no column "type"`) {
		t.Fatalf("outbox row without columns: %+v", out)
	}
}

// TestOutboxNamesMatchLikeMySQL: the outbox table and its columns are
// found whatever the case the rule and the server spell them in.
func TestOutboxNamesMatchLikeMySQL(t *testing.T) {
	e := mustEngine(t, []string{"console"}, Rule{Name: "outbox", To: []string{"bus"},
		Outbox: &Outbox{Table: "Shop.Outbox", ID: "ID", Payload: "PAYLOAD"}})
	c := &ferry.Change{ID: "0-1-5#1", Op: ferry.OpCreate, Source: "db", DB: "shop", Table: "outbox", Time: time.Unix(0, 0),
		After: ferry.Row{Columns: []string{"id", "Aggregate_ID", "type", "payload"}, Values: []any{"e1", "7", "Placed", "{}"}}}
	out := e.NewWorker().Apply(c, nil)
	if len(out) != 1 || out[0].Err != nil || out[0].Event.ID() != "e1" || out[0].Event.Subject() != "7" {
		t.Fatalf("outbox with differently cased names: %+v", out)
	}
}

func TestRuleDataIsDeterministic(t *testing.T) {
	e := mustEngine(t, nil, Rule{Name: "r", To: []string{"s"}, Event: EventExprs{Data: `{"z": 1, "a": after, "m": {"y": 2, "b": 3}}`}})
	w := e.NewWorker()
	first := string(w.Apply(orderChange(ferry.OpCreate), nil)[0].Event.Data())
	for range 50 {
		if got := string(w.Apply(orderChange(ferry.OpCreate), nil)[0].Event.Data()); got != first {
			t.Fatalf("data differs between evaluations:\n%s\n%s", first, got)
		}
	}
}

// BenchmarkTypicalRule: a when, three attributes and a five-field data map.
func BenchmarkTypicalRule(b *testing.B) {
	e := mustEngine(b, nil, Rule{Name: "order-placed", To: []string{"bus"},
		When: `table == "orders" && op == "create"`,
		Event: EventExprs{Type: `"com.example.order.placed"`, Subject: `string(after.id)`, Source: `"/shop/orders"`,
			Data: `{"order_id": after.id, "customer": after.customer, "email": after.email, "total": after.total, "status": after.card}`}})
	w := e.NewWorker()
	c := orderChange(ferry.OpCreate)
	out := make([]Output, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		out = w.Apply(c, out[:0])
	}
	if out[0].Err != nil {
		b.Fatal(out[0].Err)
	}
}

type typesStringT = types.String

func typesString(s string) types.String { return types.String(s) }

func TestHelpersPassNullThrough(t *testing.T) {
	e := mustEngine(t, nil, Rule{Name: "r", To: []string{"s"}, Event: EventExprs{Data: `{"m": mask(after.n, 4), "h": hash(after.n, "s"), "x": mask(after.customer, 1)}`}})
	c := orderChange(ferry.OpCreate)
	c.After.Columns = append(c.After.Columns, "n")
	c.After.Values = append(c.After.Values, nil)
	out := e.NewWorker().Apply(c, nil)
	if got := string(out[0].Event.Data()); got != `{"h":null,"m":null,"x":"**a"}` {
		t.Fatalf("data = %s", got)
	}
}

func TestCompileErrorsNeverQuoteExpressions(t *testing.T) {
	_, err := New(Options{Rules: []Rule{{Name: "a", Path: "transforms[0]", To: []string{"s"},
		Event: EventExprs{Data: `hash(after.email, "s3cret-salt") +`, Type: `"s3cret-type" + 1`}}}})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("compile error quotes the expression: %v", err)
	}
}
