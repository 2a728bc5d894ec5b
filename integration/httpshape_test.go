package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/state"
)

// legacyEndpoint is a plain HTTP endpoint that knows nothing of
// CloudEvents: it records what each request carried.
type legacyEndpoint struct {
	mu   sync.Mutex
	got  map[string][]string // path -> "header|body" of each request
	ceHs int                 // requests that carried ce-* headers
}

func (l *legacyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got[r.URL.Path] = append(l.got[r.URL.Path], r.Header.Get("X-Region")+"|"+r.Header.Get("Content-Type")+"|"+string(b))
	for name := range r.Header {
		if strings.HasPrefix(name, "Ce-") {
			l.ceHs++
			break
		}
	}
}

func (l *legacyEndpoint) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.got {
		n += len(v)
	}
	return n
}

// TestHTTPSinkShapesRequestsForALegacyEndpoint: row changes go to a plain
// HTTP endpoint as the payload it expects, one URL per customer, through a
// rate limit; a row whose expression fails is dead-lettered with the CEL
// error while every other row arrives reshaped.
func TestHTTPSinkShapesRequestsForALegacyEndpoint(t *testing.T) {
	start := binlogPos(t, shared)
	name, db := newDB(t, shared)
	exec1(t, db, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), region VARCHAR(8))")
	const rows = 40
	const bad = 17 // its region is NULL: the header expression fails for it
	for i := 1; i <= rows; i++ {
		region := fmt.Sprintf("'%s'", []string{"eu", "us"}[i%2])
		if i == bad {
			region = "NULL"
		}
		exec1(t, db, fmt.Sprintf("INSERT INTO customers VALUES (%d, 'Zoë %d', %s)", i, i, region))
	}
	exec1(t, db, "UPDATE customers SET name = 'Renamed' WHERE id = 3")
	legacy := &legacyEndpoint{got: map[string][]string{}}
	srv := httptest.NewServer(legacy)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: srv.URL + "/unused",
		sinks: fmt.Sprintf(`    request:
      url: '"%s/api/customers/" + string(data.after.id)'
      headers: {X-Region: 'data.after.region'}
      body: '{"customerId": data.after.id, "name": data.after.name, "op": data.op}'
      cloudevents_headers: false
    rate_limit: {requests_per_second: 500, burst: 10}
`, srv.URL)}.yaml(t, dir)
	if code, _, stderr := runFerry(t, 30*time.Second, "validate", "-c", cfg); code != 0 {
		t.Fatalf("validate: exit %d\n%s", code, stderr)
	}
	p := startFerry(t, cfg)
	eventually(t, 60*time.Second, "every good row change delivered", func() bool { return legacy.count() >= rows })
	time.Sleep(300 * time.Millisecond) // anything more would be a bug
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry run exited %d\n%s", code, tailLines(p.stderr.String(), 20))
	}

	legacy.mu.Lock()
	defer legacy.mu.Unlock()
	for i := 1; i <= rows; i++ {
		path := fmt.Sprintf("/api/customers/%d", i)
		var want []string
		if i != bad {
			region := []string{"eu", "us"}[i%2]
			want = append(want, fmt.Sprintf(`%s|application/json|{"customerId":%d,"name":"Zoë %d","op":"create"}`, region, i, i))
			if i == 3 {
				want = append(want, `us|application/json|{"customerId":3,"name":"Renamed","op":"update"}`)
			}
		}
		if got := legacy.got[path]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s got %q, want %q", path, got, want)
		}
	}
	if legacy.ceHs != 0 {
		t.Errorf("%d requests carried ce-* headers with cloudevents_headers: false", legacy.ceHs)
	}

	st, err := state.Open(filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var letters []state.DeadLetter
	_ = st.DeadLetters(context.Background(), func(d state.DeadLetter) error { letters = append(letters, d); return nil })
	if len(letters) != 1 || !strings.Contains(letters[0].Error, "request.headers.X-Region") ||
		!strings.Contains(string(letters[0].Event), fmt.Sprintf(`"id":%d`, bad)) {
		t.Fatalf("dead letters = %+v, want the row with the NULL region, with the expression's error", letters)
	}
	t.Logf("dead letter: %s", letters[0].Error)
}
