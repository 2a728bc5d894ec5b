package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
	name, db, start := binlogDB(t, shared, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), region VARCHAR(8))")
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

// TestLegacyHTTPExample runs configs/legacy-http.yaml, pointed at this
// test's database and endpoint: creates, updates and deletes reach the CRM
// as its own payload, PUT to each customer's URL.
func TestLegacyHTTPExample(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(80))",
		"INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', 'grace@example.com')",
		"UPDATE customers SET email = 'ada@new.example' WHERE id = 1",
		"DELETE FROM customers WHERE id = 2")
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Change")+" "+r.Header.Get("Authorization")+" "+string(b))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	example, err := os.ReadFile("../configs/legacy-http.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := strings.NewReplacer("shop.customers]", name+".customers]\n    start: "+start, "./.ferry", dir+"/state",
		"user: ferry", "user: root", "server_id: 4105", fmt.Sprintf("server_id: %d", nextServerID())).Replace(string(example))
	p := startFerry(t, writeConfig(t, dir, cfg), "MYSQL_ADDR="+shared.Addr, "CRM_URL="+srv.URL+"/api", "CRM_TOKEN=t0ken")
	eventually(t, 60*time.Second, "four requests", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 4 })
	time.Sleep(300 * time.Millisecond)
	p.stop()
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		`PUT /api/customers/1 create Bearer t0ken {"customerId":1,"email":"ada@example.com","name":"Ada"}`,
		`PUT /api/customers/2 create Bearer t0ken {"customerId":2,"email":"grace@example.com","name":"Grace"}`,
		`PUT /api/customers/1 update Bearer t0ken {"customerId":1,"email":"ada@new.example","name":"Ada"}`,
		`PUT /api/customers/2 delete Bearer t0ken {"customerId":2,"deleted":true}`,
	}
	// Per customer in order; customers in parallel lanes.
	for _, id := range []string{"/1 ", "/2 "} {
		var g, w []string
		for _, l := range got {
			if strings.Contains(l, id) {
				g = append(g, l)
			}
		}
		for _, l := range want {
			if strings.Contains(l, id) {
				w = append(w, l)
			}
		}
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("customer%s got\n%s\nwant\n%s", id, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d requests, want %d", len(got), len(want))
	}
}
