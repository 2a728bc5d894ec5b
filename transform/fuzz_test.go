package transform

import (
	"strings"
	"testing"
)

// FuzzCompileRule: any expression text compiles or is rejected, never panics.
func FuzzCompileRule(f *testing.F) {
	for _, s := range []string{`table == "orders"`, `after.id + `, `{"a": after}`, `hash(after.x, "s")`,
		`mask(after.card, -1)`, `json("{")`, `[1, 2][5]`, `{"k": 1}["k"]`, `rename(after, {"a": 1})`, `now()`,
		`"x" * 3`, `has(after.a.b.c)`, `after.all(k, k != "")`, `dyn(1) + "a"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		rules := []Rule{{Name: "f", Path: "transforms[0]", When: expr, To: []string{"s"}},
			{Name: "g", Path: "transforms[1]", To: []string{"s"}, Event: EventExprs{Data: expr, Subject: expr, Time: expr,
				Extensions: map[string]string{"x": expr}}}}
		e, err := New(Options{TypePrefix: "p", Rules: rules})
		if err != nil {
			return
		}
		// Compiled: evaluating on a real change must not panic either.
		_ = e.NewWorker().Apply(orderChange(1), nil)
	})
}

// FuzzEvaluate: any sample change through rules using every helper yields
// outputs or per-rule errors, never a panic.
func FuzzEvaluate(f *testing.F) {
	f.Add(`{"op":"create","db":"shop","table":"orders","after":{"id":1,"email":"a@b","card":"4111","doc":"{\"x\":1}"}}`)
	f.Add(`{"op":"delete","db":"shop","table":"outbox","before":{"id":"x"}}`)
	f.Add(`{"op":"update","db":"d","table":"t","before":{"id":[1,2]},"after":{"id":{"a":null},"email":null}}`)
	e, err := New(Options{TypePrefix: "p", DefaultTo: []string{"d"}, Rules: []Rule{
		{Name: "pii", Path: "t[0]", When: `op != "delete"`, To: []string{"s"}, Event: EventExprs{
			Subject: `string(after.id)`,
			Data:    `{"h": hash(after.email, "s"), "m": mask(after.card, 2), "d": json(after.doc), "w": without(after, ["card"]), "r": rename(after, {"id": "x"})}`}},
		{Name: "outbox", Path: "t[1]", To: []string{"s"}, Outbox: &Outbox{Table: "shop.outbox"}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	w := e.NewWorker()
	f.Fuzz(func(t *testing.T, sample string) {
		changes, err := ParseSamples(strings.NewReader(sample), "src")
		if err != nil {
			return
		}
		for i := range changes {
			for _, o := range w.Apply(&changes[i], nil) {
				if o.Err == nil && o.Event == nil {
					t.Fatalf("output without event or error: %+v", o)
				}
			}
		}
	})
}
