package httpsink

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

func TestStatusClassification(t *testing.T) {
	inNinety := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	cases := []struct {
		name       string
		status     int
		retryAfter string
		permanent  bool
		delay      time.Duration // 0: no RetryAfter
	}{
		{"500 is transient", 500, "", false, 0},
		{"502 is transient", 502, "", false, 0},
		{"503 without Retry-After", 503, "", false, 0},
		{"503 with seconds", 503, "7", false, 7 * time.Second},
		{"429 with seconds", 429, "7", false, 7 * time.Second},
		{"429 with an HTTP date", 429, inNinety, false, 90 * time.Second},
		{"429 asking for a day is capped", 429, "86400", false, maxRetryAfter},
		{"429 with a malformed Retry-After", 429, "soon", false, 0},
		{"500 with Retry-After is plain transient", 500, "7", false, 0},
		{"408 is transient", 408, "", false, 0},
		{"400 is permanent", 400, "", true, 0},
		{"425 is transient", 425, "", false, 0},
		{"401 waits for the operator", 401, "", false, 0},
		{"403 waits for the operator", 403, "", false, 0},
		{"404 is permanent", 404, "", true, 0},
		{"405 is permanent", 405, "", true, 0},
		{"409 is permanent", 409, "", true, 0},
		{"410 is permanent", 410, "", true, 0},
		{"413 is permanent", 413, "", true, 0},
		{"415 is permanent", 415, "", true, 0},
		{"422 is permanent", 422, "", true, 0},
		{"other 4xx are permanent", 418, "", true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := receiver.New()
			s, logs := newSink(t, r.Start(t), nil)
			r.FailNext(1, c.status, c.retryAfter)
			events := conntest.Events(1, 1)
			err := eventErr(t, s.Write(context.Background(), events), 0)
			if ferry.IsPermanent(err) != c.permanent {
				t.Fatalf("%v: permanent=%v, want %v", err, !c.permanent, c.permanent)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != c.status || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("%v: want a *StatusError %d with the body", err, c.status)
			}
			d, ok := ferry.RetryDelay(err)
			if ok != (c.delay > 0) || d < c.delay-2*time.Second || d > c.delay {
				t.Fatalf("RetryDelay = %v, %v; want %v", d, ok, c.delay)
			}
			// Per request at debug level only: the pipeline logs failures
			// once per burst, so a flaky endpoint does not flood the log.
			if strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "level=DEBUG") ||
				!strings.Contains(logs.String(), "status="+strconv.Itoa(c.status)) {
				t.Errorf("failure not logged at debug level only:\n%s", logs)
			}
			// The endpoint recovers: the event goes through, once.
			if err := s.Write(context.Background(), events); err != nil {
				t.Fatalf("Write after recovery = %v", err)
			}
			if r.Count() != 1 {
				t.Fatalf("received %d events, want 1", r.Count())
			}
		})
	}
}

func TestErrorsAndLogsKeepSecrets(t *testing.T) {
	const header, password, query = "Bearer h3ader-s3cret", "pa55-s3cret", "qu3ry-s3cret"
	r := receiver.New()
	r.FailMatching(func(event.Event) bool { return true }, http.StatusBadRequest)
	base := strings.TrimPrefix(r.Start(t), "http://")
	cases := []struct {
		name, url string
		want      []string // in the event's error
	}{
		{"rejected", "http://ferry:" + password + "@" + base + "?token=" + query,
			[]string{"POST http://" + base + ": 400 Bad Request: rejected event conntest-0"}},
		{"unreachable", "http://ferry:" + password + "@127.0.0.1:1/events?token=" + query,
			[]string{"POST http://127.0.0.1:1/events: dial tcp", "connection refused"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, logs := newSink(t, c.url, func(cfg *Config) {
				cfg.Headers = map[string]ferry.Secret{"Authorization": header}
			})
			err := s.Write(context.Background(), conntest.Events(2, 1))
			msg := eventErr(t, err, 0).Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, text := range []string{err.Error(), msg, logs.String()} {
				for _, secret := range []string{"s3cret", "token="} {
					if strings.Contains(text, secret) {
						t.Fatalf("%q leaked:\n%s", secret, text)
					}
				}
			}
			if !strings.Contains(logs.String(), "level=DEBUG") || !strings.Contains(logs.String(), "sink=audit") {
				t.Errorf("want a debug line naming the sink:\n%s", logs)
			}
			for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
				if strings.Count(line, "sink=") != 1 {
					t.Errorf("the sink must be named once per line: %s", line)
				}
			}
		})
	}
}

func TestRedirectIsPermanentAndNotFollowed(t *testing.T) {
	followed := false
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed = true }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target.URL+"/moved?sig=abc", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s, _ := newSink(t, srv.URL, nil)
	err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
	var se *StatusError
	if !ferry.IsPermanent(err) || !errors.As(err, &se) || se.Location != target.URL+"/moved" {
		t.Fatalf("Write = %v, want permanent with Location %s/moved", err, target.URL)
	}
	if !strings.Contains(err.Error(), "redirect to") || strings.Contains(err.Error(), "sig=") {
		t.Fatalf("error %q", err)
	}
	if followed {
		t.Fatal("the redirect was followed")
	}
}

func TestNoAnswerIsTransient(t *testing.T) {
	r := receiver.New(receiver.WithDelay(5 * time.Second))
	slow := r.Start(t)
	cases := []struct {
		name, url string
		want      string
	}{
		{"timeout", slow, "no answer within the 50ms timeout"},
		{"connection refused", "http://127.0.0.1:1/", "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newSink(t, c.url, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
			start := time.Now()
			err := eventErr(t, s.Write(context.Background(), conntest.Events(2, 1)), 0)
			if ferry.IsPermanent(err) || !strings.Contains(err.Error(), c.want) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v: want transient %q, not the caller's deadline", err, c.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"599", 599 * time.Second, true},
		{"99999999999999999999", 0, false}, // beyond uint64: not read as a number
		{"3600", maxRetryAfter, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0, true},
		{"Sun, 01 Mar 2026 14:00:00 GMT", maxRetryAfter, true},
		{"tomorrow", 0, false},
	}
	for _, c := range cases {
		d, ok := parseRetryAfter(c.in, now)
		if ok != c.ok || (ok && d != c.want) {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", c.in, d, ok, c.want, c.ok)
		}
	}
}

func TestExcerpt(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"  bad\r\n request\t\x1b[31m ", "bad request [31m"},
		{strings.Repeat("é", 300), strings.Repeat("é", 256)},
		{strings.Repeat("a", 511) + "é", strings.Repeat("a", 511)}, // a rune cut at 512 bytes is dropped
	}
	for _, c := range cases {
		if got := excerpt(strings.NewReader(c.in)); got != c.want {
			t.Errorf("excerpt(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestStatusOverrides: transient_statuses and permanent_statuses override
// the default classification per sink.
func TestStatusOverrides(t *testing.T) {
	r := receiver.New()
	s, _ := newSink(t, r.Start(t), func(c *Config) {
		c.TransientStatuses, c.PermanentStatuses = []int{409}, []int{503}
	})
	for _, c := range []struct {
		status    int
		permanent bool
	}{{409, false}, {503, true}, {500, false}, {400, true}} {
		r.FailNext(1, c.status, "")
		err := eventErr(t, s.Write(context.Background(), conntest.Events(1, 1)), 0)
		if ferry.IsPermanent(err) != c.permanent {
			t.Errorf("%d: %v, want permanent=%v", c.status, err, c.permanent)
		}
	}
}

// TestUnsendableHeaderIsPermanent: a value net/http refuses to send (a
// control character in the content type) fails permanently at once instead
// of being retried forever, and the request is never sent.
func TestUnsendableHeaderIsPermanent(t *testing.T) {
	r := receiver.New()
	s, _ := newSink(t, r.Start(t), nil)
	e := conntest.Events(1, 1)[0]
	e.SetDataContentType("text/plain\x01")
	err := eventErr(t, s.Write(context.Background(), []*event.Event{e}), 0)
	if !ferry.IsPermanent(err) || !strings.Contains(err.Error(), "Content-Type") {
		t.Fatalf("Write = %v, want a permanent error naming Content-Type", err)
	}
	if r.Attempts() != 0 {
		t.Fatalf("%d requests sent", r.Attempts())
	}
}
