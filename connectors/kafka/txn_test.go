package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// newTxSink builds the sink as the registry does for delivery: exactly_once.
func newTxSink(t testing.TB, brokers []string, mut func(*Config)) *TxSink {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Timeout, cfg.Delivery = brokers, "orders", 5*time.Second, deliveryExactlyOnce
	if mut != nil {
		mut(cfg)
	}
	s, err := Connector.Build("bus", cfg, ferry.SinkEnv{})
	if err != nil {
		t.Fatal(err)
	}
	ts, ok := s.(*TxSink)
	if !ok {
		t.Fatalf("exactly_once built a %T, not a transactional sink", s)
	}
	t.Cleanup(func() { _ = ts.Close(context.Background()) })
	return ts
}

func readCommitted() kgo.Opt { return kgo.FetchIsolationLevel(kgo.ReadCommitted()) }

func storedPos(t *testing.T, s *TxSink, source string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := s.StoredPosition(ctx, source)
	if err != nil {
		t.Fatalf("StoredPosition: %v", err)
	}
	return string(p)
}

func cp(source, pos string) []ferry.SinkCheckpoint {
	return []ferry.SinkCheckpoint{{Source: source, Position: ferry.Position(pos)}}
}

func TestAtLeastOnceIsNotTransactional(t *testing.T) {
	s, err := Connector.Build("bus", &Config{Client: clientFranz, Brokers: []string{"127.0.0.1:1"}, Topic: "t", Key: "id",
		Mode: "binary", Compression: "none", ClientID: "ferry", MaxMessageBytes: 1 << 20, Timeout: time.Second,
		Delivery: deliveryAtLeastOnce, CheckpointTopic: "_c"}, ferry.SinkEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(ferry.TransactionalSink); ok {
		t.Fatal("an at_least_once sink must not be a TransactionalSink: the pipeline would resume from it")
	}
}

func TestExactlyOnceValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers, cfg.Topic, cfg.Client, cfg.Delivery = []string{"b:9092"}, "t", clientSarama, deliveryExactlyOnce
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "delivery") || !strings.Contains(err.Error(), "franz-go") {
		t.Fatalf("exactly_once with sarama: %v", err)
	}
	cfg.Client, cfg.Delivery, cfg.TransactionalID = clientFranz, deliveryAtLeastOnce, "x"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "transactional_id") {
		t.Fatalf("transactional_id without exactly_once: %v", err)
	}
}

// A batch and its checkpoint commit together; a restarted sink reads the
// newest position back; the checkpoint topic is compacted and still
// holds it after kfake compacts.
func TestTransactionCommitsBatchWithCheckpoint(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"), kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "3600000"}))
	s := newTxSink(t, c.ListenAddrs(), nil)
	if got := storedPos(t, s, "db"); got != "" {
		t.Fatalf("position before any write: %q", got)
	}
	events := conntest.Events(30, 5)
	ctx := context.Background()
	for i := range 3 {
		if err := s.WriteAt(ctx, events[i*10:(i+1)*10], cp("db", "pos-"+string(rune('a'+i)))); err != nil {
			t.Fatalf("WriteAt %d: %v", i, err)
		}
	}
	if err := s.WriteAt(ctx, conntest.Events(1, 1)[:0], nil); err != nil {
		t.Fatalf("empty WriteAt: %v", err)
	}
	recs := consume(t, c.ListenAddrs(), "orders", readCommitted())
	if len(recs) != 30 {
		t.Fatalf("read_committed saw %d records, want 30", len(recs))
	}
	if got := storedPos(t, s, "db"); got != "pos-c" {
		t.Fatalf("stored position %q, want pos-c", got)
	}
	info := c.TopicInfo(DefaultConfig().CheckpointTopic)
	if info == nil || info.Configs["cleanup.policy"] == nil || *info.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("checkpoint topic not created compacted: %+v", info)
	}
	c.Compact()
	if n := len(consume(t, c.ListenAddrs(), DefaultConfig().CheckpointTopic, readCommitted())); n > 3 {
		t.Logf("kfake kept %d checkpoint records after compaction (it keeps the active segment)", n)
	}
	restarted := newTxSink(t, c.ListenAddrs(), nil)
	if got := storedPos(t, restarted, "db"); got != "pos-c" {
		t.Fatalf("restarted sink read position %q, want pos-c", got)
	}
	if got := storedPos(t, restarted, "other"); got != "" {
		t.Fatalf("position of a source never written: %q", got)
	}
}

// A record refused inside the transaction aborts it: read_committed sees
// nothing of it (read_uncommitted shows the aborted records were written),
// the position does not move, and the retry without the refused event
// commits.
func TestFailedTransactionIsInvisible(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"))
	s := newTxSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.MaxMessageBytes = 2048 })
	ctx := context.Background()
	if err := s.WriteAt(ctx, conntest.Events(2, 2), cp("db", "p1")); err != nil {
		t.Fatal(err)
	}
	events := conntest.Events(6, 6)[2:]
	_ = events[3].SetData(event.ApplicationJSON, json.RawMessage(`"`+strings.Repeat("x", 4000)+`"`))
	err := s.WriteAt(ctx, events, cp("db", "p2"))
	var be *ferry.BatchError
	if !errors.As(err, &be) || be.Len() != len(events) || !ferry.IsPermanent(be.Failed(3)) {
		t.Fatalf("WriteAt = %v; want every event failed, the large one permanently", err)
	}
	for _, i := range []int{0, 1, 2} {
		if !ferry.IsNotAttempted(be.Failed(i)) {
			t.Fatalf("event %d: %v; want not attempted", i, be.Failed(i))
		}
	}
	if recs := consume(t, c.ListenAddrs(), "orders", readCommitted()); len(recs) != 2 {
		t.Fatalf("read_committed saw %d records, want the 2 of the first transaction", len(recs))
	}
	if got := storedPos(t, s, "db"); got != "p1" {
		t.Fatalf("position %q after the abort, want p1", got)
	}
	if err := s.WriteAt(ctx, events[:3], cp("db", "p2")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if recs := consume(t, c.ListenAddrs(), "orders", readCommitted()); len(recs) != 5 {
		t.Fatalf("read_committed saw %d records after the retry, want 5", len(recs))
	}
	if got := storedPos(t, s, "db"); got != "p2" {
		t.Fatalf("position %q, want p2", got)
	}
}

// A broker failing the commit (EndTxn) aborts the transaction; the whole
// write fails transiently and its retry delivers each event once.
func TestCommitFailureAbortsAndRetries(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"))
	s := newTxSink(t, c.ListenAddrs(), nil)
	ctx := context.Background()
	events := conntest.Events(9, 3)
	failed := false
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.EndTxnRequest)
		if !r.Commit || failed {
			return nil, nil, false
		}
		failed = true
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return resp, nil, true
	})
	err := s.WriteAt(ctx, events, cp("db", "p1"))
	if err == nil || ferry.IsPermanent(err) {
		t.Fatalf("WriteAt with a failing commit = %v; want a transient error", err)
	}
	var be *ferry.BatchError
	if errors.As(err, &be) {
		t.Fatalf("a failed commit must fail the whole write, not some events: %v", err)
	}
	if recs := consume(t, c.ListenAddrs(), "orders", readCommitted()); len(recs) != 0 {
		t.Fatalf("read_committed saw %d records of a failed commit", len(recs))
	}
	if err := s.WriteAt(ctx, events, cp("db", "p1")); err != nil {
		t.Fatalf("retry: %v", err)
	}
	seen := map[string]int{}
	for _, r := range consume(t, c.ListenAddrs(), "orders", readCommitted()) {
		seen[toEvent(t, r).ID()]++
	}
	for _, e := range events {
		if seen[e.ID()] != 1 {
			t.Fatalf("event %s seen %d times under read_committed, want once", e.ID(), seen[e.ID()])
		}
	}
	if got := storedPos(t, s, "db"); got != "p1" {
		t.Fatalf("position %q, want p1", got)
	}
}

// A second producer with the same transactional id fences the first: the
// zombie's write fails with ErrSinkFenced, is invisible, and the zombie
// does not try again (which would fence the new one in turn).
func TestZombieProducerIsFenced(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"))
	ctx := context.Background()
	old := newTxSink(t, c.ListenAddrs(), nil)
	if err := old.WriteAt(ctx, conntest.Events(3, 3), cp("db", "p1")); err != nil {
		t.Fatal(err)
	}
	successor := newTxSink(t, c.ListenAddrs(), nil)
	if got := storedPos(t, successor, "db"); got != "p1" {
		t.Fatalf("successor read %q, want p1", got)
	}
	// Reading the position took the id over: the old producer can no
	// longer commit past what the successor resumes from.
	err := old.WriteAt(ctx, conntest.Events(9, 3)[6:], cp("db", "zombie"))
	if !errors.Is(err, ferry.ErrSinkFenced) {
		t.Fatalf("zombie WriteAt after the successor read its position = %v; want ErrSinkFenced", err)
	}
	if err := successor.WriteAt(ctx, conntest.Events(6, 3)[3:], cp("db", "p2")); err != nil {
		t.Fatalf("successor: %v", err)
	}
	if err := old.WriteAt(ctx, conntest.Events(1, 1), nil); !errors.Is(err, ferry.ErrSinkFenced) {
		t.Fatalf("zombie's next WriteAt = %v; want ErrSinkFenced without contacting the broker", err)
	}
	if err := successor.WriteAt(ctx, conntest.Events(7, 3)[6:], cp("db", "p3")); err != nil {
		t.Fatalf("the successor must go on after the zombie tried: %v", err)
	}
	if recs := consume(t, c.ListenAddrs(), "orders", readCommitted()); len(recs) != 7 {
		t.Fatalf("read_committed saw %d records, want 7 (none of the zombie's)", len(recs))
	}
	if got := storedPos(t, successor, "db"); got != "p3" {
		t.Fatalf("position %q, want p3", got)
	}
}

// A broker that does not serve transactions is refused by name.
func TestBrokerWithoutTransactionsIsRefused(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "orders"), kfake.MaxVersions(kversion.V0_10_2()))
	s := newTxSink(t, c.ListenAddrs(), func(cfg *Config) { cfg.Timeout = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.StoredPosition(ctx, "db")
	if !errors.Is(err, errTxnUnsupported) || !strings.Contains(err.Error(), "broker 0") {
		t.Fatalf("StoredPosition = %v; want the broker named as not supporting transactions", err)
	}
}

// BenchmarkDelivery300B compares exactly_once (one transaction per
// 1000-event write, with its checkpoint record) with at_least_once on the
// franz-go client: 300-byte events to kfake on loopback, same process.
func BenchmarkDelivery300B(b *testing.B) {
	b.Run(deliveryAtLeastOnce, func(b *testing.B) { benchWrite300B(b, clientFranz) })
	b.Run(deliveryExactlyOnce, func(b *testing.B) {
		c := cluster(b, kfake.SeedTopics(6, "orders"))
		s := newTxSink(b, c.ListenAddrs(), nil)
		events := conntest.Events(1000, 100)
		pad := strings.Repeat("x", 300-len(events[0].Data())-len(`,"pad":""`))
		for _, e := range events {
			_ = e.SetData(event.ApplicationJSON, json.RawMessage(`{"pad":"`+pad+`"}`))
		}
		ctx := context.Background()
		if err := s.WriteAt(ctx, events, cp("db", "p0")); err != nil { // connect first
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if err := s.WriteAt(ctx, events, cp("db", "p1")); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
}

// A second instance initializing the transactional id while the first is
// committing makes the first one's commit fail with an error that does not
// say "fenced" (kfake: INVALID_TXN_STATE, its epoch having moved on). The
// first must find out from the coordinator that it was fenced and stop,
// not take the id back with a new producer (which fenced the successor in
// turn and stopped the wrong instance: CI of 2026-12-03).
func TestInitDuringCommitFencesTheCommitter(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(3, "orders"))
	ctx := context.Background()
	older := newTxSink(t, c.ListenAddrs(), nil)
	if err := older.WriteAt(ctx, conntest.Events(3, 3), cp("db", "p1")); err != nil {
		t.Fatal(err)
	}
	successor := newTxSink(t, c.ListenAddrs(), nil)
	took := make(chan error, 1)
	c.ControlKey(kmsg.EndTxn.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		if !req.(*kmsg.EndTxnRequest).Commit {
			c.KeepControl()
			return nil, nil, false
		}
		// Hold the older instance's commit until the successor has taken
		// the id over (its InitProducerId runs while this one sleeps).
		go func() { _, err := successor.producerTx(ctx); took <- err }()
		var err error
		c.SleepControl(func() { err = <-took })
		if err != nil {
			t.Errorf("successor: %v", err)
		}
		return nil, nil, false
	})
	err := older.WriteAt(ctx, conntest.Events(6, 3)[3:], cp("db", "older"))
	if !errors.Is(err, ferry.ErrSinkFenced) {
		t.Fatalf("older WriteAt whose commit met the successor's init = %v; want ErrSinkFenced", err)
	}
	if err := older.WriteAt(ctx, conntest.Events(7, 3)[6:], cp("db", "older2")); !errors.Is(err, ferry.ErrSinkFenced) {
		t.Fatalf("older's next WriteAt = %v; want ErrSinkFenced", err)
	}
	for i, pos := range []string{"p2", "p3"} {
		if err := successor.WriteAt(ctx, conntest.Events(9, 3)[6+i:7+i], cp("db", pos)); err != nil {
			t.Fatalf("the successor must go on after the older instance failed its commit: %v", err)
		}
	}
	if got := storedPos(t, successor, "db"); got != "p3" {
		t.Fatalf("position %q, want p3", got)
	}
}
