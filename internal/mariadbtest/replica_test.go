package mariadbtest

import (
	"fmt"
	"testing"
)

func TestParseGTIDState(t *testing.T) {
	got, err := ParseGTIDState("0-1-100, 0-2-7,5-1-3,0-1-90")
	if err != nil {
		t.Fatal(err)
	}
	if want := "map[0-1:100 0-2:7 5-1:3]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	for _, bad := range []string{"0-1-x", "100", "-5"} {
		if _, err := ParseGTIDState(bad); err == nil {
			t.Errorf("ParseGTIDState(%q) accepted", bad)
		}
	}
}
