package eventexpr

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/cel-go/cel"
)

func testEvent(t *testing.T, data string) *event.Event {
	t.Helper()
	e := event.New()
	e.SetID("e-1")
	e.SetSource("/ferry/shop")
	e.SetType("com.example.shop.orders.create")
	e.SetTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	e.SetExtension("partitionkey", "shop.orders/7")
	e.SetExtension("seq", 3)
	e.SetExtension("link", cetypes.URI{URL: *mustParse(t, "https://x.example/a")})
	if err := e.SetData(event.ApplicationJSON, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestString(t *testing.T) {
	e := testEvent(t, `{"db":"shop","table":"orders","after":{"id":9007199254740993,"total":"9.50"}}`)
	cases := []struct{ expr, want, err string }{
		{expr: `db + "." + table`, want: "shop.orders"},
		{expr: `event.type + "/" + event.id`, want: "com.example.shop.orders.create/e-1"},
		{expr: `event.partitionkey + ":" + string(event.seq) + ":" + event.link`, want: "shop.orders/7:3:https://x.example/a"},
		{expr: `string(event.time)`, want: "2026-12-02T10:00:00Z"},
		{expr: `string(data.after.id)`, want: "9007199254740993"}, // an int, exact, as rules see it
		{expr: `mask(data.after.total, 2)`, want: "**50"},         // the rules' helpers
		{expr: `string(size(pick(data.after, ["id"])))`, want: "1"},
		{expr: `has(event.subject) ? event.subject : "none"`, want: "none"},
		{expr: `event.subject`, err: "no such key: subject"},
		{expr: `subject`, err: "want a non-empty string"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			p, err := Compile(c.expr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := String(p, e)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("String = %q, %v; want an error saying %q", got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`"Bearer s3cr3t" + tok`, "undeclared reference to 'tok' (line 1, column 19 of the expression)"},
		{`now()`, "undeclared reference to 'now'"},
		{`42`, "evaluates to int, want string"},
		{`"a" +`, "Syntax error"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Compile(%s) = %v, want one line saying %q, without the expression", c.expr, err, c.want)
		}
	}
	if _, err := CompileAs(`{"a": 1}`, cel.MapType(cel.StringType, cel.DynType)); err != nil {
		t.Errorf("a map(string, int) literal is a map: %v", err)
	}
	if _, err := CompileAs(`[1, 2]`, cel.MapType(cel.StringType, cel.DynType)); err == nil {
		t.Error("a list accepted for a map")
	}
}

func TestDataThatIsNotJSON(t *testing.T) {
	e := event.New()
	e.SetID("x")
	e.SetType("t")
	e.SetSource("/s")
	_ = e.SetData("text/plain", []byte("hello"))
	p, _ := Compile(`data == null ? "none" : "some"`)
	if got, err := String(p, &e); err != nil || got != "none" {
		t.Errorf("got %q, %v", got, err)
	}
	p, _ = Compile(`string(data.x)`)
	if _, err := String(p, &e); err == nil || errors.Is(err, ErrNotString) {
		t.Errorf("navigating null data: %v, want CEL's error", err)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
