package app

import (
	"strings"
	"testing"
)

// TestExactlyOnceRouting: a Kafka sink with delivery: exactly_once must be
// the only sink of exactly one source that does not run on every replica,
// and not the dead-letter sink; each refusal names the reason.
func TestExactlyOnceRouting(t *testing.T) {
	const mysql = "  db: {type: mysql, addr: \"127.0.0.1:3306\", user: root, server_id: 9}\n"
	const eo = "  bus: {type: kafka, brokers: [\"127.0.0.1:9092\"], topic: t, delivery: exactly_once}\n"
	for _, tc := range []struct{ name, cfg, want string }{
		{"only sink", "sources:\n" + mysql + "sinks:\n" + eo + "defaults: {to: [bus]}\n", ""},
		{"other sink", "sources:\n" + mysql + "sinks:\n" + eo + "  out: {type: stdout}\ndefaults: {to: [bus, out]}\n",
			"source db also reaches sink(s) out"},
		{"other sink by a rule", "sources:\n" + mysql + "sinks:\n" + eo + "  out: {type: stdout}\ndefaults: {to: [bus]}\n" +
			"transforms:\n  - {name: r, when: 'table == \"x\"', to: [out]}\n", "source db also reaches sink(s) out"},
		{"two sources", "sources:\n" + mysql + "  db2: {type: mysql, addr: \"127.0.0.1:3307\", user: root, server_id: 10}\n" +
			"sinks:\n" + eo + "  out: {type: stdout}\ntransforms:\n  - {name: a, from: [db], to: [bus]}\n  - {name: b, from: [db2], to: [bus]}\n",
			"sources db, db2 all reach sink bus"},
		{"separate sources", "sources:\n" + mysql + "  db2: {type: mysql, addr: \"127.0.0.1:3307\", user: root, server_id: 10}\n" +
			"sinks:\n" + eo + "  out: {type: stdout}\ntransforms:\n  - {name: a, from: [db], to: [bus]}\n  - {name: b, from: [db2], to: [out]}\n", ""},
		{"sarama", "sources:\n" + mysql + "sinks:\n  bus: {type: kafka, client: sarama, brokers: [\"h:9092\"], topic: t, delivery: exactly_once}\ndefaults: {to: [bus]}\n",
			"exactly_once needs client franz-go"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadString(t, tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
