package ferry

import "testing"

// BenchmarkChangeSize measures Size for a five-column row (the source
// calls it once per change, the pipeline once per change of a batch).
func BenchmarkChangeSize(b *testing.B) {
	cols := []string{"id", "customer", "qty", "price", "created"}
	c := Change{ID: "0-1-5000#17", Key: Row{Columns: cols[:1], Values: []any{int64(1)}},
		After: Row{Columns: cols, Values: []any{int64(1), "customer-1", int64(7), "0.14", "2026-12-03T06:13:24.123456"}}}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += c.Size()
	}
	if n == 0 {
		b.Fatal("no size")
	}
}
