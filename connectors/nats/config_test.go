package nats_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	ferrynats "github.com/ferry-cdc/ferry/connectors/nats"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		mut  func(*ferrynats.Config)
		want []string // field: part of the reason; none: valid
	}{
		{"minimal", func(c *ferrynats.Config) {}, nil},
		{"no url, no subject", func(c *ferrynats.Config) { c.URL, c.Subject = "", "" },
			[]string{"url: is required", "subject: set subject or subject_expression, one of them"}},
		{"both subjects", func(c *ferrynats.Config) { c.SubjectExpression = `"a." + id` },
			[]string{"subject: set subject or subject_expression"}},
		{"bad url", func(c *ferrynats.Config) { c.URL = "http://x:1" }, []string{"url: \"http://x:1\" must be nats://"}},
		{"wildcard subject", func(c *ferrynats.Config) { c.Subject = "a.*" }, []string{"subject: \"a.*\" has a wildcard"}},
		{"empty token", func(c *ferrynats.Config) { c.Subject = "a..b" }, []string{"subject: \"a..b\" has an empty token"}},
		{"bad expression", func(c *ferrynats.Config) { c.Subject, c.SubjectExpression = "", "1 +" }, []string{"subject_expression: "}},
		{"bad mode", func(c *ferrynats.Config) { c.Mode = "batch" }, []string{`mode: must be binary or structured, not "batch"`}},
		{"two auths", func(c *ferrynats.Config) { c.Token, c.User, c.Password = "t", "u", "p" }, []string{"credentials: set one of"}},
		{"user without password", func(c *ferrynats.Config) { c.User = "u" }, []string{"user: user and password go together"}},
		{"missing creds file", func(c *ferrynats.Config) { c.Credentials = "/nonexistent.creds" }, []string{"credentials: cannot read"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := ferrynats.DefaultConfig()
			cfg.URL, cfg.Subject = "nats://127.0.0.1:4222", "ferry.events"
			c.mut(cfg)
			err := ferry.CheckConfig(cfg)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("CheckConfig = %v, want nil", err)
				}
				return
			}
			for _, w := range c.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("CheckConfig = %v; missing %q", err, w)
				}
			}
		})
	}
}

// TestPermanentFailures: what retrying cannot fix is dead-lettered (a
// message over the server's max_payload, a subject the expression cannot
// make), and the later events of its key are not attempted while other
// keys go on.
func TestPermanentFailures(t *testing.T) {
	d := newDestination(t)
	name := d.addStream(t)
	cfg := ferrynats.DefaultConfig()
	cfg.URL, cfg.Stream = d.url, name
	cfg.SubjectExpression = `"` + name + `." + (subject == "bad" ? "a..b" : id)`
	s, err := ferrynats.New("perm", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	events := conntest.Events(6, 3) // keys 0, 1, 2, 0, 1, 2
	big := make([]byte, 2<<20)      // over nats-server's default 1 MiB max_payload
	for i := range big {
		big[i] = 'x'
	}
	if err := events[0].SetData("application/octet-stream", big); err != nil {
		t.Fatal(err)
	}
	bad := "bad"
	events[1].Context.(*event.EventContextV1).Subject = &bad
	err = s.Write(context.Background(), events)
	var be *ferry.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a BatchError", err)
	}
	for i, want := range []string{"permanent", "permanent", "", "not attempted", "not attempted", ""} {
		got := be.Failed(i)
		switch {
		case want == "" && got != nil:
			t.Errorf("event %d failed: %v", i, got)
		case want == "permanent" && !ferry.IsPermanent(got):
			t.Errorf("event %d: %v, want a permanent failure", i, got)
		case want == "not attempted" && !ferry.IsNotAttempted(got):
			t.Errorf("event %d: %v, want not attempted", i, got)
		}
	}
	if got := d.received(t); len(got) != 2 {
		t.Fatalf("%d events stored, want the 2 of the third key", len(got))
	}
}

// TestUnreachableServer: Open does not wait for the server, and a Write
// fails transiently (the pipeline retries it) within the timeout.
func TestUnreachableServer(t *testing.T) {
	cfg := ferrynats.DefaultConfig()
	cfg.URL, cfg.Subject, cfg.Timeout = "nats://127.0.0.1:1", "a.b", 500*time.Millisecond
	s, err := ferrynats.New("down", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open = %v, want nil: an unreachable server is a Write failure", err)
	}
	defer s.Close(context.Background())
	err = s.Write(context.Background(), conntest.Events(2, 1))
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Failed(0) == nil || ferry.IsPermanent(be.Failed(0)) || !ferry.IsNotAttempted(be.Failed(1)) {
		t.Fatalf("Write = %v, want event 0 failed transiently and event 1 not attempted", err)
	}
}
