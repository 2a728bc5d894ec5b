package kafka

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
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
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(6), kfake.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// clients are the values of the client key: every behaviour test runs
// against each.
var clients = []string{clientFranz, clientSarama}

func eachClient(t *testing.T, f func(t *testing.T, client string)) {
	for _, c := range clients {
		t.Run(c, func(t *testing.T) { f(t, c) })
	}
}

func newSink(t testing.TB, client string, brokers []string, mut func(*Config)) *Sink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Client, cfg.Brokers, cfg.Topic, cfg.Timeout = client, brokers, "orders", 5*time.Second
	if mut != nil {
		mut(cfg)
	}
	s, err := New("bus", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// consume reads topic to its ends (see kafkatest.Consume).
func consume(t testing.TB, brokers []string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	return kafkatest.Consume(t, brokers, topic, opts...)
}

// toEvent decodes a record by the CloudEvents Kafka binding's rules (see
// recordMessage) with the SDK's binding machinery: what the sink writes
// must be a CloudEvent to any conformant consumer.
func toEvent(t testing.TB, r *kgo.Record) *event.Event {
	t.Helper()
	e, err := binding.ToEvent(context.Background(), kafkawire.NewMessage(r))
	if err != nil {
		t.Fatalf("record at %d/%d is not a CloudEvent: %v", r.Partition, r.Offset, err)
	}
	return e
}

func TestAcceptance(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) { acceptance(t, client) })
}

func acceptance(t *testing.T, client string) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			c := cluster(t, kfake.SeedTopics(6, "orders"))
			brokers := c.ListenAddrs()
			failer := failPartitions(c)
			received := &topicLog{brokers: brokers, topic: "orders"}
			conntest.RunSink(t, conntest.SinkHarness{
				New: func(t *testing.T) ferry.Sink {
					cfg := DefaultConfig()
					cfg.Client, cfg.Brokers, cfg.Topic, cfg.Mode = client, brokers, "orders", mode
					// A refused partition's records fail on this deadline.
					cfg.Timeout = 2 * time.Second
					s, err := New("bus", cfg, nil)
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				Received: received.of,
				FailEvents: func(t *testing.T, match func(string) bool) {
					if err := failer.set(match); err != nil {
						t.Fatalf("failing partitions: %v", err)
					}
				},
				// kfake's server side of a connection the test's
				// consumer closed ends after the sink's check.
				IgnoreGoroutines: []string{
					"github.com/twmb/franz-go/pkg/kfake.(*clientConn).read",
					"github.com/twmb/franz-go/pkg/kfake.(*clientConn).write",
					// go-metrics' process-wide meter ticker, which
					// sarama's first client starts and nothing stops.
					"github.com/rcrowley/go-metrics.(*meterArbiter).tick",
				},
			})
		})
	}
}

// topicLog is what a topic received, in the order the suite first saw each
// record: consume reads partition by partition, so records a later Write
// put in an earlier partition would otherwise come before older ones.
type topicLog struct {
	brokers []string
	topic   string
	seen    map[[2]int64]bool // partition, offset
	events  []event.Event
}

func (l *topicLog) of(t *testing.T) []event.Event {
	if l.seen == nil {
		l.seen = map[[2]int64]bool{}
	}
	for _, r := range consume(t, l.brokers, l.topic) {
		at := [2]int64{int64(r.Partition), r.Offset}
		if !l.seen[at] {
			l.seen[at] = true
			l.events = append(l.events, *toEvent(t, r))
		}
	}
	return l.events
}

func TestKeysPartitionsAndHeaders(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t, kfake.SeedTopics(6, "orders"))
		s := newSink(t, client, c.ListenAddrs(), nil)
		events := conntest.Events(60, 6)
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		recs := consume(t, c.ListenAddrs(), "orders")
		if len(recs) != 60 {
			t.Fatalf("%d records", len(recs))
		}
		partitionOf, lastN := map[string]int32{}, map[string]int{}
		for _, r := range recs {
			key := string(r.Key)
			if p, seen := partitionOf[key]; seen && p != r.Partition {
				t.Fatalf("key %s in partitions %d and %d", key, p, r.Partition)
			}
			partitionOf[key] = r.Partition
			e := toEvent(t, r)
			n := conntest.EventIndex(e.ID())
			if prev, ok := lastN[key]; ok && prev > n {
				t.Fatalf("key %s: event %d after %d", key, n, prev)
			}
			lastN[key] = n
			if key != e.Extensions()["partitionkey"] {
				t.Fatalf("key %q, partitionkey %v", key, e.Extensions()["partitionkey"])
			}
		}
		want := []string{"ce_specversion", "ce_id", "ce_source", "ce_type", "content-type", "ce_subject", "ce_time", "ce_partitionkey"}
		var got []string
		for _, h := range recs[0].Headers {
			got = append(got, h.Key)
		}
		for _, w := range want {
			if !strings.Contains(strings.Join(got, " "), w) {
				t.Errorf("binary-mode headers %v lack %s", got, w)
			}
		}
	})
}

func TestTopicExpression(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t)
		s := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.Topic, cfg.TopicExpression = "", `db + "." + table` })
		e := event.New()
		e.SetID("1")
		e.SetSource("/ferry/db/shop/orders")
		e.SetType("t")
		_ = e.SetData(event.ApplicationJSON, json.RawMessage(`{"db":"shop","table":"orders","op":"create"}`))
		if err := s.Write(context.Background(), []*event.Event{&e}); err != nil {
			t.Fatal(err)
		}
		if recs := consume(t, c.ListenAddrs(), "shop.orders"); len(recs) != 1 {
			t.Fatalf("%d records in shop.orders", len(recs))
		}
	})
}

func TestOversizedMessageFailsAloneAndPermanently(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t, kfake.SeedTopics(1, "orders"))
		s := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.MaxMessageBytes = 2048 })
		events := conntest.Events(3, 3)
		_ = events[1].SetData(event.ApplicationJSON, json.RawMessage(`"`+strings.Repeat("x", 4000)+`"`))
		err := s.Write(context.Background(), events)
		var be *ferry.BatchError
		if !errors.As(err, &be) || be.Len() != 1 || !ferry.IsPermanent(be.Failed(1)) {
			t.Fatalf("Write = %v", err)
		}
		if recs := consume(t, c.ListenAddrs(), "orders"); len(recs) != 2 {
			t.Fatalf("%d records; the two others must be delivered", len(recs))
		}
	})
}

func TestSASL(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
			t.Run(mech, func(t *testing.T) {
				c := cluster(t, kfake.EnableSASL(), kfake.Superuser(mech, "ferry", "s3cret"), kfake.SeedTopics(1, "orders"))
				s := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.SASL = SASL{Mechanism: mech, Username: "ferry", Password: "s3cret"} })
				if err := s.Write(context.Background(), conntest.Events(2, 1)); err != nil {
					t.Fatalf("authenticated Write = %v", err)
				}
				bad := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.SASL = SASL{Mechanism: mech, Username: "ferry", Password: "wrong"} })
				if err := bad.Write(context.Background(), conntest.Events(1, 1)); err == nil {
					t.Fatal("wrong password accepted")
				}
			})
		}
	})
}

func TestTLS(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		srv := httptest.NewTLSServer(nil) // borrow a test certificate
		cert := srv.TLS.Certificates[0]
		srv.Close()
		c := cluster(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}), kfake.SeedTopics(1, "orders"))
		s := newSink(t, client, c.ListenAddrs(), func(cfg *Config) { cfg.TLS.InsecureSkipVerify = true })
		if err := s.Write(context.Background(), conntest.Events(2, 1)); err != nil {
			t.Fatalf("Write over TLS = %v", err)
		}
	})
}

func TestUnreachableClusterIsATransientWriteFailure(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		s := newSink(t, client, []string{addr}, func(cfg *Config) { cfg.Timeout = time.Second })
		if err := s.Open(context.Background()); err != nil {
			t.Fatalf("Open = %v; an unreachable cluster must not fail Open", err)
		}
		err := s.Write(context.Background(), conntest.Events(1, 1))
		if err == nil || ferry.IsPermanent(err) {
			t.Fatalf("Write = %v, want a transient error", err)
		}
	})
}

// TestBrokerRestartLosesNothing: kfake keeps its log in DataDir; the
// broker goes away mid-stream and comes back on the same port.
func TestBrokerRestartLosesNothing(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		dir := t.TempDir()
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(3, "orders")}
		c1, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		brokers := c1.ListenAddrs()
		s := newSink(t, client, brokers, nil)
		events := conntest.Events(200, 10)
		if err := s.Write(context.Background(), events[:100]); err != nil {
			t.Fatal(err)
		}
		c1.Close()
		written := make(chan error, 1)
		go func() { // the pipeline's retries, compressed
			var err error
			for attempt := 0; attempt < 60; attempt++ {
				if err = s.Write(context.Background(), events[100:]); err == nil {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			written <- err
		}()
		time.Sleep(time.Second)
		c2, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if err := <-written; err != nil {
			t.Fatalf("Write after the restart = %v", err)
		}
		seen := map[string]bool{}
		for _, r := range consume(t, brokers, "orders") {
			seen[toEvent(t, r).ID()] = true
		}
		for _, e := range events {
			if !seen[e.ID()] {
				t.Fatalf("event %s lost across the broker restart (%d of 200 present)", e.ID(), len(seen))
			}
		}
	})
}

// TestKcatReadsWhatFerryWrote: Debian's kcat (librdkafka), an independent
// client, sees the same keys, headers and values.
func TestKcatReadsWhatFerryWrote(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t, kfake.SeedTopics(2, "orders"))
		s := newSink(t, client, c.ListenAddrs(), nil)
		events := conntest.Events(10, 3)
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		out, lines := kcatConsume(t, c.ListenAddrs()[0], "orders")
		if len(lines) != 10 {
			t.Fatalf("kcat read %d messages:\n%s", len(lines), out)
		}
		for _, l := range lines {
			var m struct {
				Key     string   `json:"key"`
				Payload string   `json:"payload"`
				Headers []string `json:"headers"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("kcat line %q: %v", l, err)
			}
			h := strings.Join(m.Headers, ",")
			if !strings.HasPrefix(m.Key, "db.t/") || !strings.Contains(h, "ce_specversion,1.0") || !strings.Contains(h, "ce_partitionkey,"+m.Key) ||
				!strings.Contains(m.Payload, `"key"`) {
				t.Fatalf("kcat message = %s", l)
			}
		}
	})
}

// BenchmarkWrite300B: 300-byte events to kfake on loopback, same process,
// 1000-event Writes over 100 keys.
func BenchmarkWrite300B(b *testing.B) {
	for _, client := range clients {
		b.Run(client, func(b *testing.B) { benchWrite300B(b, client) })
	}
}

// BenchmarkWriteOne is the steady trickle's shape: one event per Write,
// one produce round trip each (franz-go; kfake runs in the process).
func BenchmarkWriteOne(b *testing.B) {
	c := cluster(b, kfake.SeedTopics(6, "orders"))
	s := newSink(b, clientFranz, c.ListenAddrs(), nil)
	events := conntest.Events(1, 1)
	ctx := context.Background()
	if err := s.Write(ctx, events); err != nil { // connect first
		b.Fatal(err)
	}
	for b.Loop() {
		if err := s.Write(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
}

func benchWrite300B(b *testing.B, client string) {
	c := cluster(b, kfake.SeedTopics(6, "orders"))
	s := newSink(b, client, c.ListenAddrs(), nil)
	var n produceCounter
	if client == clientFranz {
		s.opts = append(s.opts, kgo.WithHooks(&n))
	}
	events := conntest.Events(1000, 100)
	pad := strings.Repeat("x", 300-len(events[0].Data())-len(`,"pad":""`))
	for _, e := range events {
		_ = e.SetData(event.ApplicationJSON, json.RawMessage(fmt.Sprintf(`{"pad":%q}`, pad)))
	}
	if err := s.Write(context.Background(), events); err != nil { // connect first
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(context.Background(), events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	if client == clientFranz { // the broker's work grows with them
		b.ReportMetric(float64(n.requests.Load())/float64(b.N+1), "requests/op")
		b.ReportMetric(float64(n.batches.Load())/float64(b.N+1), "batches/op")
	}
}

// produceCounter counts the produce requests and record batches a
// franz-go client wrote.
type produceCounter struct{ requests, batches atomic.Int64 }

func (c *produceCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == 0 && err == nil {
		c.requests.Add(1)
	}
}

func (c *produceCounter) OnProduceBatchWritten(kgo.BrokerMetadata, string, int32, kgo.ProduceBatchMetrics) {
	c.batches.Add(1)
}
