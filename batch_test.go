package ferry

import "testing"

func TestSizeOfChangesPrefersTheSourcesSize(t *testing.T) {
	changes := []Change{
		{ID: "a#1", After: Row{Columns: []string{"id", "v"}, Values: []any{int64(1), "one"}}},
		{ID: "a#2", Before: Row{Columns: []string{"id", "v"}, Values: []any{int64(2), []byte("two")}}},
	}
	want := int64(changes[0].Size() + changes[1].Size())
	for _, c := range []struct {
		name string
		b    Batch
		want int64
	}{
		{"unset: computed", Batch{Changes: changes}, want},
		{"set: taken as is", Batch{Changes: changes, Size: 7}, 7},
		{"no changes", Batch{Checkpoint: Position("p")}, 0},
	} {
		if got := c.b.SizeOfChanges(); got != c.want {
			t.Errorf("%s: SizeOfChanges = %d, want %d", c.name, got, c.want)
		}
	}
}
