package kafkasource

import (
	"strings"
	"testing"
)

func TestCodec(t *testing.T) {
	var c Codec
	p, err := c.ParsePosition(`{"orders":{"0":42,"3":7},"pay.ments":{"1":0}}`)
	if err != nil {
		t.Fatal(err)
	}
	text, err := c.FormatPosition(p)
	if err != nil || text != `{"orders":{"0":42,"3":7},"pay.ments":{"1":0}}` {
		t.Fatalf("FormatPosition = %q, %v", text, err)
	}
	for _, bad := range []string{`orders:0@42`, `{"orders":{"x":1}}`, `{"orders":{"0":-1}}`, `{"orders":{"-2":1}}`} {
		if _, err := c.ParsePosition(bad); err == nil || !strings.Contains(err.Error(), "kafka position") {
			t.Errorf("ParsePosition(%q) = %v, want an error naming the position", bad, err)
		}
	}
}
