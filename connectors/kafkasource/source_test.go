package kafkasource

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	"github.com/ferry-cdc/ferry/connectors/kafkawire"
	"github.com/ferry-cdc/ferry/internal/testkit/kafkatest"
)

func cluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func newSource(t testing.TB, brokers []string, mut func(*Config)) *Source {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topics, cfg.Group, cfg.Timeout = brokers, []string{"orders"}, "ferry-test", 5*time.Second
	cfg.CommitInterval = 50 * time.Millisecond
	if mut != nil {
		mut(cfg)
	}
	s, err := New("legacy", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openSource(t testing.TB, s *Source, from ferry.Position) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Open(ctx, from); err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
}

// readN reads until n changes arrived, acking every batch when ack is set.
func readN(t testing.TB, s *Source, n int, ack bool) []ferry.Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []ferry.Change
	for len(out) < n {
		b, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d = %v", len(out), n, err)
		}
		out = append(out, b.Changes...)
		if ack && b.Ack != nil {
			if err := b.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// TestSourceSuite runs the shared acceptance suite. Each source the
// harness makes joins a group of its own (two read side by side in one
// subtest), so resuming goes through Ferry's checkpoint.
func TestSourceSuite(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	var seq, groups atomic.Int64
	conntest.RunSource(t, conntest.SourceHarness{
		New: func(t *testing.T) ferry.Source {
			return newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Group = fmt.Sprintf("suite-%d", groups.Add(1)) })
		},
		Produce: func(t *testing.T, n int) {
			rs := make([]*kgo.Record, n)
			for i := range rs {
				rs[i] = &kgo.Record{Topic: "orders", Key: []byte("k"), Value: fmt.Appendf(nil, `{"n":%d}`, seq.Add(1))}
			}
			kafkatest.Produce(t, c.ListenAddrs(), rs...)
		},
		// kfake's server side of a connection the source closed can
		// outlive the check (CI of 2026-12-03).
		IgnoreGoroutines: []string{
			"github.com/twmb/franz-go/pkg/kfake.(*clientConn).read",
			"github.com/twmb/franz-go/pkg/kfake.(*clientConn).write",
		},
	})
}

// TestBindingRecordsPassThroughAndOthersGetTheDefaultShape: binary and
// structured records become their events; a plain record keeps its value,
// key, headers and coordinates for the default mapping and rules.
func TestBindingRecordsPassThroughAndOthersGetTheDefaultShape(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	structured := `{"specversion":"1.0","id":"s-1","source":"/erp","type":"com.example.structured","data":{"a":1}}`
	kafkatest.Produce(t, c.ListenAddrs(),
		&kgo.Record{Topic: "orders", Value: []byte(`{"b":2}`), Headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("b-1")},
			{Key: "ce_source", Value: []byte("/crm")}, {Key: "ce_type", Value: []byte("com.example.binary")},
			{Key: "ce_tenant", Value: []byte("acme")}, {Key: "content-type", Value: []byte("application/json")}}},
		&kgo.Record{Topic: "orders", Value: []byte(structured), Headers: []kgo.RecordHeader{
			{Key: "content-type", Value: []byte(kafkawire.StructuredType)}}},
		&kgo.Record{Topic: "orders", Key: []byte("cust-7"), Value: []byte(`{"total":12.5}`), Headers: []kgo.RecordHeader{
			{Key: "X-Origin", Value: []byte("as400")}}},
	)
	s := newSource(t, c.ListenAddrs(), nil)
	openSource(t, s, nil)
	got := readN(t, s, 3, true)
	bin, st, plain := got[0].Request.Event, got[1].Request.Event, got[2].Request
	if bin == nil || bin.ID() != "b-1" || bin.Type() != "com.example.binary" || bin.Extensions()["tenant"] != "acme" || string(bin.Data()) != `{"b":2}` {
		t.Fatalf("binary record became %v", bin)
	}
	if st == nil || st.ID() != "s-1" || st.Source() != "/erp" || string(st.Data()) != `{"a":1}` {
		t.Fatalf("structured record became %v", st)
	}
	if plain.Event != nil || plain.ContentType != "application/json" || string(plain.Data) != `{"total":12.5}` ||
		plain.Header.Get("x-origin") != "as400" || plain.Extensions["partitionkey"] != "cust-7" ||
		plain.Kafka == nil || plain.Kafka.Topic != "orders" || plain.Kafka.Offset != 2 || string(plain.Kafka.Key) != "cust-7" {
		t.Fatalf("plain record became %+v", plain)
	}
	if got[2].ID != "orders/0/2" || got[2].Op != ferry.OpRequest {
		t.Fatalf("plain record change id %q op %v", got[2].ID, got[2].Op)
	}
}

// TestBrokenBindingRecordIsInvalidNotBlocking: a record that claims the
// binding but is no valid CloudEvent comes out Invalid, naming its place and
// what is wrong, and the records behind it follow.
func TestBrokenBindingRecordIsInvalidNotBlocking(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	kafkatest.Produce(t, c.ListenAddrs(),
		&kgo.Record{Topic: "orders", Value: []byte(`{}`), Headers: []kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("x")}}}, // no source, no type
		&kgo.Record{Topic: "orders", Value: []byte(`{not json`), Headers: []kgo.RecordHeader{
			{Key: "content-type", Value: []byte(kafkawire.StructuredType)}}},
		&kgo.Record{Topic: "orders", Value: []byte(`{}`), Headers: []kgo.RecordHeader{{Key: "ce_specversion", Value: []byte("0.1")}}},
		&kgo.Record{Topic: "orders", Value: []byte(`{"ok":true}`)},
	)
	s := newSource(t, c.ListenAddrs(), nil)
	openSource(t, s, nil)
	got := readN(t, s, 4, true)
	for i, want := range []string{"orders/0/0", "orders/0/1", "orders/0/2"} {
		if got[i].Invalid == nil || !strings.Contains(got[i].Invalid.Error(), want) {
			t.Errorf("record %d: Invalid = %v, want an error naming %s", i, got[i].Invalid, want)
		}
	}
	t.Logf("reasons: %v | %v | %v", got[0].Invalid, got[1].Invalid, got[2].Invalid)
	if got[3].Invalid != nil {
		t.Fatalf("valid record after the broken ones: %v", got[3].Invalid)
	}
}

// TestOffsetsFollowAcks: nothing is committed before its batch is acked; a
// failed ack commits nothing; an ack commits its batch.
func TestOffsetsFollowAcks(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	kafkatest.Produce(t, c.ListenAddrs(), &kgo.Record{Topic: "orders", Value: []byte("1")}, &kgo.Record{Topic: "orders", Value: []byte("2")})
	s := newSource(t, c.ListenAddrs(), nil)
	openSource(t, s, nil)
	ctx := context.Background()
	b, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Several commit intervals pass: nothing may be committed.
	for range 5 {
		s.commit(ctx, s.client, nil)
		if p := s.Status().Partitions; len(p) != 1 || p[0].Committed > 0 {
			t.Fatalf("committed before the ack: %+v", p)
		}
	}
	if err := b.Ack(ctx, fmt.Errorf("pipeline stopped")); err != nil {
		t.Fatal(err)
	}
	s.commit(ctx, s.client, nil)
	if p := s.Status().Partitions; p[0].Committed > 0 {
		t.Fatalf("committed after a failed ack: %+v", p)
	}
	if err := b.Ack(ctx, nil); err != nil {
		t.Fatal(err)
	}
	s.commit(ctx, s.client, nil)
	p := s.Status().Partitions
	if p[0].Committed != int64(len(b.Changes)) || p[0].End != 2 || p[0].Lag != 2-int64(len(b.Changes)) {
		t.Fatalf("after the ack of %d records: %+v", len(b.Changes), p)
	}
}

// TestStarts: a new group starts where start says; latest becomes
// concrete at the first assignment, so records written after it are read
// by the next run even though nothing was delivered before the stop.
func TestStarts(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	kafkatest.Produce(t, c.ListenAddrs(), &kgo.Record{Topic: "orders", Value: []byte("old")})
	time.Sleep(20 * time.Millisecond) // the next records' timestamps come later
	mid := time.Now()
	kafkatest.Produce(t, c.ListenAddrs(), &kgo.Record{Topic: "orders", Value: []byte("mid")})

	at := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Group, cfg.Start = "by-time", mid.Format(time.RFC3339Nano) })
	openSource(t, at, nil)
	if got := readN(t, at, 1, false); string(got[0].Request.Data) != "mid" {
		t.Fatalf("start at a time read %q first", got[0].Request.Data)
	}

	latest := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Group, cfg.Start = "by-latest", "latest" })
	openSource(t, latest, nil)
	waitAssigned(t, latest)
	_ = latest.Close(context.Background())
	kafkatest.Produce(t, c.ListenAddrs(), &kgo.Record{Topic: "orders", Value: []byte("new")})
	again := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Group, cfg.Start = "by-latest", "latest" })
	openSource(t, again, nil)
	if got := readN(t, again, 1, false); string(got[0].Request.Data) != "new" {
		t.Fatalf("latest, restarted before any delivery, read %q first, want the record written in between", got[0].Request.Data)
	}

	strict := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Group, cfg.Start = "never-committed", "committed" })
	openSource(t, strict, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := strict.Read(ctx); err == nil || !strings.Contains(err.Error(), "no committed offset") {
		t.Fatalf("start committed on a new group: Read = %v", err)
	}
}

func waitAssigned(t testing.TB, s *Source) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); len(s.offs.assigned()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no partition assigned")
		}
		// Polling drives the group; nothing is there to read.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, _ = s.Read(ctx)
		cancel()
	}
}

// TestUnknownTopicAndUnreachableBrokers: Open waits, saying why, and
// gives up with ctx naming the cause.
func TestUnknownTopicAndUnreachableBrokers(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"))
	s := newSource(t, c.ListenAddrs(), func(cfg *Config) { cfg.Topics = []string{"orders", "no-such-topic"} })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Open(ctx, nil); err == nil || !strings.Contains(err.Error(), "topic does not exist: no-such-topic") {
		t.Fatalf("Open with an unknown topic = %v", err)
	}
	s = newSource(t, []string{"127.0.0.1:1"}, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	if err := s.Open(ctx, nil); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Open with unreachable brokers = %v", err)
	}
}

func TestTLSAndSASL(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // borrow a test certificate
	cert := srv.TLS.Certificates[0]
	srv.Close()
	c := cluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "ferry", "s3cret"), kfake.SeedTopics(1, "orders"))
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(&tls.Config{InsecureSkipVerify: true}),
		(&kafkawire.SASL{Mechanism: "SCRAM-SHA-256", Username: "ferry", Password: "s3cret"}).Opts()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, c.ListenAddrs(), func(cfg *Config) {
		cfg.TLS.InsecureSkipVerify = true
		cfg.SASL = kafkawire.SASL{Mechanism: "SCRAM-SHA-256", Username: "ferry", Password: "s3cret"}
	})
	openSource(t, s, nil)
	if got := readN(t, s, 1, true); string(got[0].Request.Data) != "x" {
		t.Fatalf("read %q over TLS and SASL", got[0].Request.Data)
	}
	bad := newSource(t, c.ListenAddrs(), func(cfg *Config) {
		cfg.TLS.InsecureSkipVerify = true
		cfg.SASL = kafkawire.SASL{Mechanism: "SCRAM-SHA-256", Username: "ferry", Password: "wrong"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := bad.Open(ctx, nil); err == nil {
		t.Fatal("wrong password accepted")
	}
}

var _ = event.New

// TestStatusFollowsTheBrokers: while the broker is away the source reports
// reconnecting and not connected (so /readyz fails), and streaming again
// once it is back.
func TestStatusFollowsTheBrokers(t *testing.T) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.DataDir(t.TempDir())}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	addr := c.ListenAddrs()
	s := newSource(t, addr, nil)
	openSource(t, s, nil)
	waitAssigned(t, s)
	waitStatus := func(connected bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			st := s.Status()
			if st.Connected == connected && (st.State == ferry.StateStreaming) == connected {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %+v, want connected=%v", st, connected)
			}
			_, _ = tryRead(s)
		}
	}
	waitStatus(true)
	c.Close()
	waitStatus(false)
	var port int
	if _, err := fmt.Sscanf(addr[0][strings.LastIndex(addr[0], ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	for range 20 { // the port may linger briefly
		if c, err = kfake.NewCluster(append(opts, kfake.Ports(port))...); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitStatus(true)
}
