package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/state"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestExampleConfigs: every example in configs/ validates, and each one with
// samples yields exactly its reviewed expected events (what users copy
// must keep working).
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) < 4 {
		t.Fatalf("found only %d example configs", len(files))
	}
	for _, f := range files {
		if code, _, stderr := runFerry(t, 30*time.Second, "validate", "-c", f); code != 0 {
			t.Errorf("ferry validate %s: exit %d\n%s", f, code, stderr)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		samples := filepath.Join("../configs/samples", name+".json")
		if _, err := os.Stat(samples); err != nil {
			continue
		}
		code, out, stderr := runFerry(t, 30*time.Second, "transform", "test", "-c", f, "--input", samples,
			"--expect", filepath.Join("../configs/samples", name+".expected.json"))
		if code != 0 {
			t.Errorf("ferry transform test %s: exit %d\n%s%s", name, code, out, stderr)
		}
	}
}

// TestCaptureThenTestOffline records real changes with `ferry run
// --capture`, then replays the file through `ferry transform test`: the
// offline events equal the ones delivered live.
func TestCaptureThenTestOffline(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(8,2), meta JSON)",
		`INSERT INTO orders VALUES (1, 9.50, '{"channel":"web"}')`, "UPDATE orders SET total = 12 WHERE id = 1")
	r := receiver.New()
	dir := t.TempDir()
	cfg := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	rules := fmt.Sprintf(`transforms:
  - name: totals
    when: 'table == "orders"'
    event:
      type: '"com.example.order." + op'
      data: '{"id": after.id, "total": double(after.total), "channel": after.meta.channel}'
    to: [recv]
`)
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	capture := filepath.Join(dir, "captured.jsonl")
	p := startFerryArgs(t, "run", "-c", cfg, "-c", rulesFile, "--capture", capture)
	live := waitEvents(t, r, 2)
	p.stop()
	code, out, stderr := runFerry(t, 30*time.Second, "transform", "test", "-c", cfg, "-c", rulesFile, "--input", capture)
	if code != 0 {
		t.Fatalf("transform test on the capture: %d %s", code, stderr)
	}
	var offline []struct {
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal([]byte(out), &offline); err != nil || len(offline) != 2 {
		t.Fatalf("offline results: %v\n%s", err, out)
	}
	for i, o := range offline {
		var a, b map[string]any
		_ = json.Unmarshal(o.Event, &a)
		lb, _ := json.Marshal(live[i])
		_ = json.Unmarshal(lb, &b)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("event %d offline differs from live:\noffline %v\nlive    %v", i, a, b)
		}
	}
}

// TestOutboxEndToEnd: a service writes its business row and its outbox row
// in one transaction, then deletes processed outbox rows; the bus gets
// exactly the outbox events, keyed by aggregate, and nothing for deletes.
func TestOutboxEndToEnd(t *testing.T) {
	name, db, start := binlogDB(t, shared, "CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(8,2))",
		`CREATE TABLE outbox (id CHAR(36) PRIMARY KEY, aggregate_type VARCHAR(64), aggregate_id VARCHAR(64),
			type VARCHAR(128), payload JSON, trace VARCHAR(55))`)
	for i := 1; i <= 5; i++ {
		tx, _ := db.Begin()
		_, _ = tx.Exec("INSERT INTO orders VALUES (?, ?)", i, 10*i)
		_, _ = tx.Exec("INSERT INTO outbox VALUES (UUID(), 'Order', ?, 'com.example.OrderPlaced', JSON_OBJECT('order_id', ?, 'total', ?), NULL)", i%2, i, 10*i)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	exec1(t, db, "DELETE FROM outbox")
	r := receiver.New()
	dir := t.TempDir()
	base := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	// The outbox example, pointed at this test's database; only orders fall back to the default mapping, which has no sink here.
	example, _ := os.ReadFile("../configs/outbox.yaml")
	rules := "transforms:" + strings.SplitN(strings.SplitN(string(example), "\ntransforms:", 2)[1], "\nsinks:", 2)[0]
	rules = strings.ReplaceAll(strings.ReplaceAll(rules, "shop.outbox", name+".outbox"), "[bus]", "[recv]")
	rulesFile := filepath.Join(dir, "rules.yaml")
	_ = os.WriteFile(rulesFile, []byte(rules+"\ndefaults: {to: []}\n"), 0o600)
	p := startFerryArgs(t, "run", "-c", base, "-c", rulesFile)
	events := waitEvents(t, r, 5)
	if len(events) != 5 {
		t.Fatalf("got %d events, want the 5 outbox rows (deletes and orders rows emit nothing)", len(events))
	}
	perKey := map[string][]float64{}
	for _, e := range events {
		var d map[string]any
		_ = json.Unmarshal(e.Data(), &d)
		key := e.Extensions()["partitionkey"].(string)
		perKey[key] = append(perKey[key], d["order_id"].(float64))
		if e.Type() != "com.example.OrderPlaced" || e.Source() != "/shop/Order" || e.Subject() != key || len(e.ID()) != 36 {
			t.Errorf("outbox event = %s", e)
		}
	}
	if fmt.Sprint(perKey["1"]) != "[1 3 5]" || fmt.Sprint(perKey["0"]) != "[2 4]" {
		t.Errorf("per-aggregate order: %v", perKey)
	}
	p.stop()
}

// TestRuleFailureIsDeadLettered: a rule that fails at runtime on one
// change dead-letters that change with the rule's name; the others flow.
func TestRuleFailureIsDeadLettered(t *testing.T) {
	name, _, start := binlogDB(t, shared, "CREATE TABLE t (id INT PRIMARY KEY, doc VARCHAR(100))",
		`INSERT INTO t VALUES (1, '{"ok": true}')`, `INSERT INTO t VALUES (2, 'not json')`, `INSERT INTO t VALUES (3, '{"ok": false}')`)
	r := receiver.New()
	dir := t.TempDir()
	base := pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir)
	rulesFile := filepath.Join(dir, "rules.yaml")
	_ = os.WriteFile(rulesFile, []byte("transforms:\n  - name: parse-doc\n    event: {data: '{\"ok\": json(after.doc).ok}'}\n    to: [recv]\n"), 0o600)
	p := startFerryArgs(t, "run", "-c", base, "-c", rulesFile)
	waitEvents(t, r, 2)
	eventually(t, 10*time.Second, "the rule failure in the log", func() bool {
		return strings.Contains(p.stderr.String(), "rule failed; dead-lettering the change")
	})
	p.stop()
	st, err := state.Open(filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var letters []state.DeadLetter
	_ = st.DeadLetters(context.Background(), func(d state.DeadLetter) error { letters = append(letters, d); return nil })
	if len(letters) != 1 || letters[0].Rule != "parse-doc" || !strings.Contains(letters[0].Error, "json:") ||
		!strings.Contains(string(letters[0].Event), `"doc":"not json"`) {
		t.Fatalf("dead letters = %+v", letters)
	}
}
