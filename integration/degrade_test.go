package integration

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestPermanentRejectsDoNotHoldBackOthers is the measured case,
// scaled for CI: an endpoint rejects every event of one table with 400.
// The rejected events are all dead-lettered (not one per lane per retry
// round), a change of another table committed after them is delivered
// meanwhile, /readyz says the sink dead-letters, and the log has a line per
// burst, not per event.
func TestPermanentRejectsDoNotHoldBackOthers(t *testing.T) {
	const rejected = 300
	name, db, start := binlogDB(t, shared, "CREATE TABLE bad (id INT PRIMARY KEY)", "CREATE TABLE good (id INT PRIMARY KEY)")
	r := receiver.New()
	r.FailMatching(func(e event.Event) bool { return strings.Contains(e.Type(), ".bad.") }, 400)
	adminAddr := freeAddr(t)
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r), admin: adminAddr}.yaml(t, t.TempDir())
	p := startFerry(t, cfg)
	defer p.stop()
	exec1(t, db, fmt.Sprintf("INSERT INTO bad SELECT seq FROM seq_1_to_%d", rejected))
	for i := range rejected {
		exec1(t, db, fmt.Sprintf("DELETE FROM bad WHERE id = %d", i+1))
		if i%100 == 0 {
			exec1(t, db, fmt.Sprintf("INSERT INTO good VALUES (%d)", i))
		}
	}
	eventually(t, 60*time.Second, "the good table's 3 changes delivered", func() bool { return r.Count() == 3 })
	eventually(t, 60*time.Second, "every rejected change dead-lettered", func() bool {
		_, body := getBody(adminAddr, "/status")
		return strings.Contains(body, fmt.Sprintf(`"dead_lettered": %d`, 2*rejected))
	})
	code, body := getBody(adminAddr, "/readyz")
	if code != 503 || !strings.Contains(body, "sink recv dead-lettered events") || !strings.Contains(body, "400 Bad Request") {
		t.Errorf("/readyz = %d %q, want 503 naming the dead letters", code, body)
	}
	if n := strings.Count(p.stderr.String(), `level=ERROR msg="event dead-lettered"`); n == 0 || n > rejected/10 {
		t.Errorf("%d dead-letter log lines for %d dead letters; want one per burst", n, 2*rejected)
	}
}

// TestKeyWithControlCharactersIsDelivered: a row whose key holds control
// characters, quotes, "%" and emoji reaches the HTTP endpoint in binary
// mode (it used to make a header net/http refuses, retried forever); the
// subject percent-decodes to the key.
func TestKeyWithControlCharactersIsDelivered(t *testing.T) {
	name, db, start := binlogDB(t, shared)
	key := "a\x01b\t\"q\" 100% 🚀"
	exec1(t, db, "CREATE TABLE k (id VARCHAR(40) CHARACTER SET utf8mb4 PRIMARY KEY)")
	if _, err := db.Exec("INSERT INTO k VALUES (?)", key); err != nil {
		t.Fatal(err)
	}
	r := receiver.New()
	p := startFerry(t, pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, t.TempDir()))
	defer p.stop()
	events := waitEvents(t, r, 1)
	sub := events[0].Subject()
	if strings.ContainsFunc(sub, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		t.Fatalf("subject %q carries a control character", sub)
	}
	if got, err := url.PathUnescape(sub); err != nil || got != key {
		t.Fatalf("subject %q decodes to %q (%v), want %q", sub, got, err, key)
	}
}
