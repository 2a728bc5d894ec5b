package transform

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/ferry-cdc/ferry"
)

func TestSampleRoundTrip(t *testing.T) {
	c := sampleChange()
	c.After.Values[7] = float64(0.5) // floats survive as doubles; float32 is only a column type
	c.Before.Values[7] = float64(0.25)
	line := AppendSample(nil, c)
	got, err := ParseSamples(bytes.NewReader(line), "")
	if err != nil {
		t.Fatal(err)
	}
	// Re-encoding the parsed change gives the same bytes: nothing was lost.
	if again := AppendSample(nil, &got[0]); !bytes.Equal(again, line) {
		t.Fatalf("round trip differs:\n%s\n%s", line, again)
	}
	if !reflect.DeepEqual(got[0].After.Columns, c.After.Columns) || got[0].Key.Values[0] != int64(42) {
		t.Fatalf("parsed %+v", got[0])
	}
}

func TestParseSamplesForms(t *testing.T) {
	obj := `{"op":"create","db":"shop","table":"orders","after":{"id":1},"tx":{"id":"0-1-1","order":1}}`
	for name, in := range map[string]string{"object": obj, "array": "[" + obj + "," + obj + "]", "lines": obj + "\n" + obj + "\n"} {
		got, err := ParseSamples(strings.NewReader(in), "db")
		if err != nil || len(got) == 0 || got[0].ID != "0-1-1#1" || got[0].Source != "db" || got[0].Op != ferry.OpCreate {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	for in, want := range map[string]string{
		`{"op":"insert","db":"a","table":"b"}`:                             "sample 0: op: unknown op \"insert\"",
		`{"op":"create","table":"b"}`:                                      "db and table are required",
		`{"op":"create","db":"a","table":"b","x":1}`:                       `unknown field "x"`,
		`{"op":"create","db":"a","table":"b"}`:                             "source_name is required",
		`{"op":"create","db":"a","table":"b","source_name":"s","after":1}`: "after: want an object",
	} {
		if _, err := ParseSamples(strings.NewReader(in), ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSamples(%s) = %v, want %q", in, err, want)
		}
	}
}
