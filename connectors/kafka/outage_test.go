package kafka

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// writeRetrying is the pipeline's delivery loop, compressed: it retries the
// failed events of a batch, in order, until every one is acknowledged.
// It returns how many events failed on the way.
func writeRetrying(s *Sink, batch []*event.Event) (failed int, err error) {
	pending := batch
	for attempt := 0; attempt < 200; attempt++ {
		if err = s.Write(context.Background(), pending); err == nil {
			return failed, nil
		}
		failed += len(pending)
		var be *ferry.BatchError
		if errors.As(err, &be) {
			var next []*event.Event
			for i, e := range pending {
				if f := be.Failed(i); f != nil {
					if ferry.IsPermanent(f) {
						return failed, f
					}
					next = append(next, e)
				}
			}
			failed += len(next) - len(pending)
			pending = next
		}
		time.Sleep(100 * time.Millisecond)
	}
	return failed, err
}

// TestOutageKeepsPerKeyOrder: the broker is away for three times the
// records' delivery timeout, then twice more for about one, while batches
// keep coming. The sink fails some records; the retries must not land
// after later records of their key: per key, the first copy of every
// event comes in source order, and none is missing. (The sarama gate's
// old gap, a batch sarama retried failing when the broker returned after
// later records of its partition were encoded, showed in about one run of
// 70 with the long outage alone, in 3 of 20 with the short ones added.)
func TestOutageKeepsPerKeyOrder(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(t.TempDir()), kfake.SeedTopics(3, "orders")}
		c1, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatal(err)
		}
		brokers := c1.ListenAddrs()
		s := newSink(t, client, brokers, func(cfg *Config) { cfg.Timeout = time.Second })
		events := conntest.Events(20000, 5)
		stop, written := make(chan struct{}), make(chan int, 1)
		failures := 0
		go func() { // the source: a batch of 50 every 10ms until told to stop
			n := 0
			defer func() { written <- n }()
			for ; n+50 <= len(events); n += 50 {
				select {
				case <-stop:
					return
				default:
				}
				f, err := writeRetrying(s, events[n:n+50])
				failures += f
				if err != nil {
					t.Errorf("events %d to %d: %v", n, n+50, err)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		c := c1
		for _, away := range []time.Duration{3 * time.Second, 1200 * time.Millisecond, 1500 * time.Millisecond} {
			time.Sleep(400 * time.Millisecond)
			c.Close()
			time.Sleep(away)
			if c, err = kfake.NewCluster(opts...); err != nil {
				t.Fatal(err)
			}
		}
		defer c.Close()
		time.Sleep(500 * time.Millisecond)
		close(stop)
		n := <-written
		if t.Failed() {
			return
		}
		lastFirst, seen := map[string]int{}, map[string]bool{}
		for _, r := range consume(t, brokers, "orders") {
			e := toEvent(t, r)
			if seen[e.ID()] {
				continue // a retried duplicate: at least once
			}
			seen[e.ID()] = true
			k, i := conntest.PartitionKey(e), conntest.EventIndex(e.ID())
			if prev, ok := lastFirst[k]; ok && prev > i {
				t.Fatalf("key %s: event %d first written after event %d", k, i, prev)
			}
			lastFirst[k] = i
		}
		for _, e := range events[:n] {
			if !seen[e.ID()] {
				t.Fatalf("event %s lost across the outage (%d of %d present)", e.ID(), len(seen), n)
			}
		}
		if failures == 0 {
			t.Fatal("no Write failed: the outage tested nothing")
		}
		t.Logf("%d events written, %d failures retried, %d distinct read back", n, failures, len(seen))
	})
}

// TestPartitionsLikeJavaClient: a key's partition is murmur2(key) as
// Kafka's Java producer computes it (values from Kafka's UtilsTest).
func TestPartitionsLikeJavaClient(t *testing.T) {
	eachClient(t, func(t *testing.T, client string) {
		c := cluster(t, kfake.SeedTopics(6, "orders"))
		s := newSink(t, client, c.ListenAddrs(), nil)
		javaMurmur2 := map[string]int32{"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
			"a-little-bit-longer-string": -1486304829, "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, "abc": 479470107}
		events, i := conntest.Events(len(javaMurmur2), 1), 0
		for k := range javaMurmur2 {
			events[i].SetExtension("partitionkey", k)
			i++
		}
		if err := s.Write(context.Background(), events); err != nil {
			t.Fatal(err)
		}
		recs := consume(t, c.ListenAddrs(), "orders")
		if len(recs) != len(javaMurmur2) {
			t.Fatalf("%d records", len(recs))
		}
		for _, r := range recs {
			if want := (javaMurmur2[string(r.Key)] & 0x7fffffff) % 6; r.Partition != want {
				t.Errorf("key %q in partition %d, Java's producer picks %d", r.Key, r.Partition, want)
			}
		}
	})
}

// A Write whose context ends while its produce request is unanswered
// (the pipeline shutting down, a write deadline) fails every record it
// holds no acknowledgement for, transiently; the next Write first waits
// for those records, and every event is in the topic at the end.
func TestAbandonedWriteFailsItsUnacknowledgedRecords(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"))
	s := newSink(t, clientFranz, c.ListenAddrs(), nil)
	first := conntest.Events(6, 3)
	if err := s.Write(context.Background(), first[:3]); err != nil { // connect
		t.Fatal(err)
	}
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		select {
		case held <- struct{}{}:
		default:
		}
		c.SleepControl(func() { <-release })
		return nil, nil, false // then handled as usual
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-held; cancel() }()
	err := s.Write(ctx, first[3:])
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Len() != 3 {
		t.Fatalf("abandoned Write = %v; want all 3 records failed", err)
	}
	for _, i := range be.Indexes() {
		if f := be.Failed(i); !errors.Is(f, errNoAck) || ferry.IsPermanent(f) {
			t.Fatalf("record %d: %v; want a transient errNoAck", i, f)
		}
	}
	close(release)
	if err := s.Write(context.Background(), first[3:]); err != nil { // the retry
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range consume(t, c.ListenAddrs(), "orders") {
		seen[toEvent(t, r).ID()]++
	}
	for _, e := range first {
		if seen[e.ID()] == 0 {
			t.Fatalf("event %s missing; seen %v", e.ID(), seen)
		}
	}
}
