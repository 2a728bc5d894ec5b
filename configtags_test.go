package ferry

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type tagInner struct {
	Mode string `yaml:"mode" ferry:"enum=a|b"`
}

type tagConfig struct {
	Name    string        `yaml:"name" ferry:"required,example=n1"`
	Kind    string        `yaml:"kind" ferry:"default=x,enum=x|y"`
	Method  string        `yaml:"method" ferry:"default=POST,enum=POST|PUT,fold"`
	Start   string        `yaml:"start" ferry:"default=latest,enum=latest,pattern=^[0-9]+$"`
	Items   []string      `yaml:"items" ferry:"default=x|y,enum=x|y|z"`
	Wait    time.Duration `yaml:"wait" ferry:"default=1m30s"`
	Count   uint32        `yaml:"count" ferry:"default=7"`
	Topic   string        `yaml:"topic" ferry:"oneof=t,example=t1"`
	TopicEx string        `yaml:"topic_ex" ferry:"oneof=t"`
	Inner   tagInner      `yaml:"inner"`
	// own is reported by Validate instead of the tag.
	Own string `yaml:"own" ferry:"enum=o"`
}

func (c *tagConfig) Validate() error {
	if c.Own != "" && c.Own != "o" {
		return Invalid("own", "is not o (own message)")
	}
	return nil
}

func TestDefaultsFromTags(t *testing.T) {
	got := Defaults[tagConfig]()
	want := &tagConfig{Kind: "x", Method: "POST", Start: "latest", Items: []string{"x", "y"}, Wait: 90 * time.Second, Count: 7}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Defaults = %+v, want %+v", got, want)
	}
	if err := CheckTags(got); err != nil {
		t.Fatal(err)
	}
}

func TestCheckConfigRules(t *testing.T) {
	c := Defaults[tagConfig]()
	c.Kind, c.Method, c.Start, c.Items, c.Inner.Mode, c.Own = "w", "put", "x1", []string{"z", "q"}, "c", "p"
	c.Topic, c.TopicEx = "a", "b"
	got := map[string]string{}
	for _, e := range leaves(CheckConfig(c)) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("not a FieldError: %v", e)
		}
		got[fe.Field] = fe.Err.Error()
	}
	want := map[string]string{
		"name":       "is required, e.g. n1",
		"kind":       `must be x or y, not "w"`,
		"start":      `must be latest, or match ^[0-9]+$, not "x1"`,
		"items[1]":   `must be x, y or z, not "q"`,
		"topic":      "set topic or topic_ex, one of them",
		"inner.mode": `must be a or b, not "c"`,
		"own":        "is not o (own message)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CheckConfig:\n got %v\nwant %v", got, want)
	}
	c = Defaults[tagConfig]()
	c.Name, c.Start, c.TopicEx = "n", "42", "e"
	if err := CheckConfig(c); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if ex := Example(c); !reflect.DeepEqual(ex, map[string]any{"name": "n1", "topic": "t1"}) {
		t.Fatalf("Example = %v", ex)
	}
}

func TestMalformedTagsAreReported(t *testing.T) {
	for _, c := range []any{
		&struct {
			A int `yaml:"a" ferry:"enum=x"`
		}{},
		&struct {
			A string `yaml:"a" ferry:"default=z,enum=x|y"`
		}{},
		&struct {
			A time.Duration `yaml:"a" ferry:"default=soon"`
		}{},
		&struct {
			A string `yaml:"a" ferry:"requird"`
		}{},
		&struct {
			A string `yaml:"a" ferry:"pattern=(["`
		}{},
	} {
		if err := CheckTags(c); err == nil || !strings.Contains(err.Error(), "ferry tag") {
			t.Errorf("%T: CheckTags = %v, want a ferry tag error", c, err)
		}
	}
}
