package mysql

import (
	"encoding/json"
	"testing"
)

func TestLiftable(t *testing.T) {
	at := func(pos uint32) position { return position{File: "mysql-bin.000002", Pos: pos} }
	present := &tableSchema{Columns: []schemaColumn{{Name: "id", Type: "int"}}}
	quarantined := schemaVersion{Table: "d.t", At: at(400), Origin: originDDL, DDL: "ALTER TABLE t WAIT 5 ADD c INT", Quarantined: "near WAIT"}
	for _, c := range []struct {
		name string
		vs   []schemaVersion
		want *position // nil: nothing to lift
	}{
		{"no history", nil, nil},
		{"not quarantined", []schemaVersion{{At: at(100), Origin: originSnapshot, Schema: present}}, nil},
		{"quarantine last", []schemaVersion{{At: at(100), Origin: originSnapshot, Schema: present}, quarantined}, &quarantined.At},
		{"followed by the base snapshot", []schemaVersion{quarantined, {At: at(900), Origin: originSnapshot, Schema: present}}, &quarantined.At},
		{"followed by a first read and a resync", []schemaVersion{quarantined, {At: at(900), Origin: originCatalog, Schema: present},
			{At: at(950), Origin: originResync, Schema: present}}, &quarantined.At},
		// A DDL after the quarantine changed the table from a schema nobody
		// knows: today's schema is not the one the quarantined DDL made.
		{"followed by a DDL", []schemaVersion{quarantined, {At: at(900), Origin: originDDL, DDL: "ALTER TABLE t ADD d INT", Unknown: true}}, nil},
		{"followed by a DROP", []schemaVersion{quarantined, {At: at(900), Origin: originDDL, DDL: "DROP TABLE t"}}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := liftable(c.vs)
			switch {
			case c.want == nil && got != nil:
				t.Errorf("lifts the version at %s, want none", got.At)
			case c.want != nil && (got == nil || got.At != *c.want):
				t.Errorf("lifts %v, want the version at %s", got, *c.want)
			}
		})
	}
}

func TestQuarantinedRowIn(t *testing.T) {
	ev := func(db, table, file string, pos uint32) json.RawMessage {
		b, err := json.Marshal(quarantinedEvent{DB: db, Table: table, Op: "create", File: file, Pos: pos, Tx: "0-1-9"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	row := ev("shop", "orders", "mysql-bin.000002", 500)
	for _, c := range []struct {
		name        string
		event       json.RawMessage
		tables      []string
		from, until string
		want        bool
	}{
		{"inside", row, []string{"shop.orders"}, "mysql-bin.000002:400", "mysql-bin.000002:900", true},
		{"any table", row, nil, "mysql-bin.000002:400", "mysql-bin.000002:900", true},
		{"from is inclusive", row, nil, "mysql-bin.000002:500", "mysql-bin.000003:4", true},
		{"until is exclusive", row, nil, "mysql-bin.000002:400", "mysql-bin.000002:500", false},
		{"until with gtid", row, nil, "mysql-bin.000002:400", "mysql-bin.000002:900 gtid=0-1-12", true},
		{"earlier file", row, nil, "mysql-bin.000003:4", "mysql-bin.000003:900", false},
		{"file numbers, not text", ev("shop", "orders", "mysql-bin.000010", 500), nil, "mysql-bin.000009:4", "mysql-bin.000011:4", true},
		{"other table", row, []string{"shop.customers"}, "mysql-bin.000002:4", "mysql-bin.000002:900", false},
		{"table names are exact", row, []string{"shop.Orders"}, "mysql-bin.000002:4", "mysql-bin.000002:900", false},
		{"gtid range covers nothing", row, nil, "0-1-5", "mysql-bin.000002:900", false},
		{"no until covers nothing", row, nil, "mysql-bin.000002:4", "", false},
		{"not a quarantined row", json.RawMessage(`{"op":"create"}`), nil, "mysql-bin.000002:4", "mysql-bin.000002:900", false},
	} {
		if got := QuarantinedRowIn(c.event, c.tables, c.from, c.until); got != c.want {
			t.Errorf("%s: QuarantinedRowIn = %v, want %v", c.name, got, c.want)
		}
	}
}
