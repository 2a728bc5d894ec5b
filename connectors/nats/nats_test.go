package nats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	cejs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	ferrynats "github.com/ferry-cdc/ferry/connectors/nats"
)

// destination is one nats-server whose streams the tests read back with
// their own client, decoding each message with the CloudEvents SDK's
// JetStream binding (an independent reader of the NATS protocol binding).
type destination struct {
	url string
	js  jetstream.JetStream

	mu      sync.Mutex
	streams []string // one per sink the harness built, in order
}

func newDestination(t *testing.T) *destination {
	url := startServer(t)
	js, err := jetstream.New(connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	// The first request starts the client's reply subscription, a
	// goroutine that must exist before the suite's leak checks begin.
	if _, err := js.AccountInfo(ctx(t)); err != nil {
		t.Fatalf("JetStream is not enabled on the test server: %v", err)
	}
	return &destination{url: url, js: js}
}

// addStream creates a stream for the subjects prefix.>, which keeps one
// message per subject and refuses another (the FailEvents injection).
func (d *destination) addStream(t *testing.T) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := fmt.Sprintf("S%d", len(d.streams))
	_, err := d.js.CreateStream(ctx(t), jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.MemoryStorage,
		MaxMsgsPerSubject: 1, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true,
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	d.streams = append(d.streams, name)
	return name
}

// received decodes every message of every stream, stream by stream in
// sequence order, skipping the placeholders FailEvents stores.
func (d *destination) received(t *testing.T) []event.Event {
	d.mu.Lock()
	streams := append([]string(nil), d.streams...)
	d.mu.Unlock()
	var out []event.Event
	for _, name := range streams {
		for _, m := range d.messages(t, name) {
			if m.Header.Get(placeholder) != "" {
				continue
			}
			e, err := binding.ToEvent(context.Background(), cejs.NewMessage(m))
			if err != nil {
				t.Fatalf("stream %s: the SDK cannot read a message as a CloudEvent: %v (headers %v)", name, err, m.Header)
			}
			out = append(out, *e)
		}
	}
	return out
}

// messages reads a stream's messages in sequence order.
func (d *destination) messages(t *testing.T, name string) []*natsgo.Msg {
	s, err := d.js.Stream(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []*natsgo.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx(t), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged
		}
		if err != nil {
			t.Fatalf("stream %s message %d: %v", name, seq, err)
		}
		out = append(out, &natsgo.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	}
	return out
}

const placeholder = "Conntest-Placeholder"

// failEvents makes the latest stream refuse the events match picks: it
// stores a placeholder on their subjects, which hold one message each;
// nil purges them.
func (d *destination) failEvents(t *testing.T, match func(id string) bool) {
	d.mu.Lock()
	name := d.streams[len(d.streams)-1]
	d.mu.Unlock()
	s, err := d.js.Stream(ctx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	if match == nil {
		for _, m := range d.messages(t, name) {
			if m.Header.Get(placeholder) != "" {
				if err := s.Purge(ctx(t), jetstream.WithPurgeSubject(m.Subject)); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	for i := range 10000 { // the ids conntest.Events gives
		id := fmt.Sprintf("conntest-%d", i)
		if !match(id) {
			continue
		}
		m := natsgo.NewMsg(name + "." + id)
		m.Header.Set(placeholder, "1")
		if _, err := d.js.PublishMsg(ctx(t), m); err != nil {
			t.Fatalf("placeholder for %s: %v", id, err)
		}
	}
}

func (d *destination) newSink(t *testing.T, mode string) ferry.Sink {
	name := d.addStream(t)
	cfg := ferrynats.DefaultConfig()
	cfg.URL, cfg.Mode, cfg.Stream, cfg.Timeout = d.url, mode, name, 5*time.Second
	cfg.SubjectExpression = fmt.Sprintf("%q + \".\" + id", name)
	s, err := ferrynats.New("test", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConntest(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			d := newDestination(t)
			conntest.RunSink(t, conntest.SinkHarness{
				New:        func(t *testing.T) ferry.Sink { return d.newSink(t, mode) },
				Received:   d.received,
				FailEvents: d.failEvents,
			})
		})
	}
}

// TestBindingHeaders checks the wire form against the binding by hand:
// binary mode's ce-* headers and content-type, the data as the payload,
// Nats-Msg-Id; structured mode's content type and JSON body.
func TestBindingHeaders(t *testing.T) {
	d := newDestination(t)
	for _, mode := range []string{"binary", "structured"} {
		s := d.newSink(t, mode)
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		events := conntest.AwkwardEvents()
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatalf("%s: Write = %v", mode, err)
		}
		_ = s.Close(context.Background())
		msgs := d.messages(t, d.streams[len(d.streams)-1])
		if len(msgs) != len(events) {
			t.Fatalf("%s: %d messages, want %d", mode, len(msgs), len(events))
		}
		for i, m := range msgs {
			e := events[i]
			if got := m.Header.Get(jetstream.MsgIDHeader); got != e.ID() {
				t.Errorf("%s: Nats-Msg-Id %q, want %q", mode, got, e.ID())
			}
			if mode == "structured" {
				if ct := m.Header.Get("content-type"); ct != "application/cloudevents+json" {
					t.Errorf("structured content-type %q", ct)
				}
				var got event.Event
				if err := got.UnmarshalJSON(m.Data); err != nil || got.Subject() != e.Subject() || string(got.Data()) != string(e.Data()) {
					t.Errorf("structured event %d: %v, subject %q data %q", i, err, got.Subject(), got.Data())
				}
				continue
			}
			for name, want := range map[string]string{"ce-specversion": "1.0", "ce-id": e.ID(), "ce-source": e.Source(),
				"ce-type": e.Type(), "ce-subject": e.Subject(), "ce-partitionkey": conntest.PartitionKey(e),
				"content-type": e.DataContentType(), "ce-time": "2026-01-02T03:04:05Z"} {
				if got := m.Header.Get(name); got != want {
					t.Errorf("event %d: header %s = %q, want %q", i, name, got, want)
				}
			}
			if string(m.Data) != string(e.Data()) {
				t.Errorf("event %d: payload %q, want the data %q", i, m.Data, e.Data())
			}
		}
	}
}

// TestDuplicatePublishIsStoredOnce: a retried event (same id) within the
// stream's duplicate window is acknowledged and not stored again.
func TestDuplicatePublishIsStoredOnce(t *testing.T) {
	d := newDestination(t)
	s := d.newSink(t, "binary")
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	// Another subject for the same id: MaxMsgsPerSubject cannot be what
	// refuses the copy, only the id.
	events := conntest.Events(3, 3)
	for range 2 {
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	if got := d.received(t); len(got) != 3 {
		t.Fatalf("%d messages stored, want 3 (the copies deduplicated by Nats-Msg-Id)", len(got))
	}
}

// TestAuthentication: token and user/password reach a server that needs
// them; without them a Write fails, transiently.
func TestAuthentication(t *testing.T) {
	for name, c := range map[string]struct {
		flags []string
		set   func(*ferrynats.Config)
		opt   natsgo.Option
	}{
		"token":    {[]string{"--auth", "s3cret-token"}, func(c *ferrynats.Config) { c.Token = "s3cret-token" }, natsgo.Token("s3cret-token")},
		"password": {[]string{"--user", "ferry", "--pass", "s3cret-pass"}, func(c *ferrynats.Config) { c.User, c.Password = "ferry", "s3cret-pass" }, natsgo.UserInfo("ferry", "s3cret-pass")},
	} {
		t.Run(name, func(t *testing.T) {
			url := startServer(t, c.flags...)
			js, err := jetstream.New(connect(t, url, c.opt))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "A", Subjects: []string{"a.>"}, Storage: jetstream.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			for _, auth := range []bool{false, true} {
				cfg := ferrynats.DefaultConfig()
				cfg.URL, cfg.Subject, cfg.Timeout = url, "a.events", time.Second
				if auth {
					c.set(cfg)
				}
				s, err := ferrynats.New("auth", cfg, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Open(context.Background()); err != nil {
					t.Fatal(err)
				}
				err = s.Write(context.Background(), conntest.Events(2, 1))
				_ = s.Close(context.Background())
				var be *ferry.BatchError
				switch {
				case auth && err != nil:
					t.Fatalf("with credentials: Write = %v", err)
				case !auth && (!errors.As(err, &be) || ferry.IsPermanent(be.Failed(0)) || !ferry.IsNotAttempted(be.Failed(1))):
					t.Fatalf("without credentials: Write = %v, want event 0 failed transiently and 1 not attempted", err)
				case !auth && strings.Contains(err.Error(), "s3cret"):
					t.Fatalf("the error shows the secret: %v", err)
				}
			}
		})
	}
}
