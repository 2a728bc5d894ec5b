package kafka

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// Records built into one arena per Write (shared header and byte chunks,
// shared type, source, content type and time values) decode, each, to exactly its own event: sources that
// change from event to event, extensions of several types, values past a
// chunk's end, and the trace headers appended after the others must not
// leak from one record into its neighbour.
func TestArenaRecordsDecodeToTheirOwnEvents(t *testing.T) {
	s := newSink(t, clientFranz, []string{"127.0.0.1:1"}, nil) // never contacted
	const n = 700                                              // several byte and header chunks
	evs := conntest.Events(n, 50)
	for i, e := range evs {
		e.SetSource(fmt.Sprintf("/ferry/db/shop/t%d", i%3/2)) // runs of two sources
		e.SetType(fmt.Sprintf("shop.t%d.created", i%6))       // more types than the cache holds
		e.SetTime(e.Time().Add(time.Duration(i/3) * time.Microsecond))
		if i%11 == 0 {
			_ = e.SetData("application/vnd.ferry+json", e.Data())
		}
		e.SetExtension("seq", int32(i))
		e.SetExtension("flag", i%2 == 0)
		if i%7 == 0 {
			e.SetExtension("big", string(make([]byte, arenaChunk+i))) // larger than a chunk
			e.SetSubject(strconv.Itoa(i) + "-subject")
		}
	}
	spans := make([]tracectx.Span, n)
	for i := range spans {
		if i%5 == 0 {
			spans[i] = span{}
		}
	}
	be := ferry.NewBatchError()
	recs := s.records(tracectx.WithSpans(context.Background(), spans), evs, be)
	if be.Len() != 0 {
		t.Fatal(be)
	}
	for i, r := range recs {
		got, want := toEvent(t, r), evs[i]
		if got.ID() != want.ID() || got.Source() != want.Source() || got.Subject() != want.Subject() ||
			got.Type() != want.Type() || got.DataContentType() != want.DataContentType() ||
			!got.Time().Equal(want.Time()) || string(got.Data()) != string(want.Data()) {
			t.Fatalf("record %d decodes to %v, want %v", i, got, want)
		}
		for name, v := range want.Extensions() {
			if txt := extensionText(v); fmt.Sprint(got.Extensions()[name]) != txt {
				t.Fatalf("record %d: extension %s = %v, want %s", i, name, got.Extensions()[name], txt)
			}
		}
		if string(r.Key) != ferry.OrderingKey(want) {
			t.Fatalf("record %d: key %q, want %q", i, r.Key, ferry.OrderingKey(want))
		}
		h := map[string]string{}
		for _, x := range r.Headers {
			h[x.Key] = string(x.Value)
		}
		if tp := h["traceparent"]; (i%5 == 0) != (tp == deliveryTP) {
			t.Fatalf("record %d: traceparent %q", i, tp)
		}
	}
}

// BenchmarkRecords builds the records of a 1000-event Write (a backlog)
// and of a 1-event Write (a steady trickle): per Write, not per event.
func BenchmarkRecords(b *testing.B) {
	for _, n := range []int{1000, 1} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s := newSink(b, clientFranz, []string{"127.0.0.1:1"}, nil)
			evs := conntest.Events(n, 100)
			ctx := context.Background()
			for b.Loop() {
				_ = s.records(ctx, evs, ferry.NewBatchError())
			}
		})
	}
}
