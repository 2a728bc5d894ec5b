package webhook_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

func TestStatusCountsRequestsByCode(t *testing.T) {
	f := start(t, nil)
	if st := f.src.Status(); st.State != ferry.StateStreaming || !st.Connected || st.Buffered != 0 || st.Lag != 0 {
		t.Fatalf("open source: %+v", st)
	}
	for range 2 {
		if resp, body := f.post(t, "application/json", `{"n":1}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %d %s", resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, f.url, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st := f.src.Status()
	if st.Requests[200] != 2 || st.Requests[405] != 1 || len(st.Requests) != 2 || st.Buffered != 2 {
		t.Fatalf("after 2 accepted and 1 refused: %+v", st)
	}

	b := f.read(t)
	received := b.Changes[0].Time
	time.Sleep(20 * time.Millisecond)
	if lag := f.src.Status().Lag; lag < 20*time.Millisecond || lag > time.Since(received)+time.Millisecond {
		t.Fatalf("lag while the batch waits for the sinks: %v (received %v ago)", lag, time.Since(received))
	}
	if err := b.Ack(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if st := f.src.Status(); st.Lag != 0 || st.Buffered != 0 {
		t.Fatalf("after the ack: %+v", st)
	}
	if err := f.src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.src.Status(); st.State != ferry.StateStopped || st.Connected {
		t.Fatalf("closed source: %+v", st)
	}
}
