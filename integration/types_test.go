package integration

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// typesTable creates and fills a table with every column type the contract
// covers, edge values included (rows 1 and 2).
var typesTable = []string{
	`CREATE TABLE types (
			id INT PRIMARY KEY,
			ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT UNSIGNED, mi MEDIUMINT UNSIGNED, i INT UNSIGNED,
			bi BIGINT, biu BIGINT UNSIGNED, bis BIGINT,
			dec1 DECIMAL(30,10), f FLOAT, d DOUBLE,
			c CHAR(10), vc VARCHAR(100), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
			bl BLOB, bn BINARY(4), vb VARBINARY(8),
			dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR,
			j JSON, e ENUM('red','green','blue'), st SET('a','b','c','d'), bt BIT(10), n INT NULL
		) CHARACTER SET utf8mb4`,
	"SET time_zone = '+02:00'",
	`INSERT INTO types VALUES (1,
			-128, 255, 65535, 16777215, 4294967295,
			-9223372036854775808, 18446744073709551615, 9007199254740993,
			'-12345678901234567890.1234567891', 0.1, 2.718281828459045,
			'abc', 'héllo wörld 🚀', 'long text ✓', 'café',
			X'00FF10', X'01', X'0000FF',
			'2024-02-29', '-838:59:59.000', '2024-02-29 23:59:59.123456', '2038-01-19 05:14:07.999999', 2024,
			'{"a": [1, 2.5, "x"], "b": {"c": null}}', 'green', 'a,c,d', b'1000000001', NULL)`,
	"SET SESSION sql_mode = ''",
	`INSERT INTO types (id, dt, dtm, ts, y) VALUES (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0)`,
}

// TestTypesRoundTrip writes every column type the contract covers, edge
// values included, and checks the JSON of each event's `after` image.
func TestTypesRoundTrip(t *testing.T) {
	name, _, start := binlogDB(t, shared, typesTable...)
	want := map[float64]string{
		1: `{"id":1,"ti":-128,"tiu":255,"si":65535,"mi":16777215,"i":4294967295,
			"bi":"-9223372036854775808","biu":"18446744073709551615","bis":"9007199254740993",
			"dec1":"-12345678901234567890.1234567891","f":0.1,"d":2.718281828459045,
			"c":"abc","vc":"héllo wörld 🚀","tx":"long text ✓","l1":"café",
			"bl":"AP8Q","bn":"AQAAAA==","vb":"AAD/",
			"dt":"2024-02-29","tm":"-838:59:59.000","dtm":"2024-02-29T23:59:59.123456","ts":"2038-01-19T03:14:07.999999Z","y":2024,
			"j":{"a":[1,2.5,"x"],"b":{"c":null}},"e":"green","st":["a","c","d"],"bt":513,"n":null}`,
		2: `{"id":2,"ti":null,"tiu":null,"si":null,"mi":null,"i":null,"bi":null,"biu":null,"bis":null,"dec1":null,"f":null,"d":null,
			"c":null,"vc":null,"tx":null,"l1":null,"bl":null,"bn":null,"vb":null,
			"dt":null,"tm":null,"dtm":null,"ts":null,"y":null,"j":null,"e":null,"st":null,"bt":null,"n":null}`,
	}

	r := receiver.New()
	dir := t.TempDir()
	p := startFerry(t, pipelineConfig{server: shared, db: name, start: start, url: receiver.Start(t, r)}.yaml(t, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for _, e := range r.Events() {
		var data struct {
			After map[string]any `json:"after"`
		}
		if err := json.Unmarshal(e.Data(), &data); err != nil {
			t.Fatal(err)
		}
		id := data.After["id"].(float64)
		var exp map[string]any
		if err := json.Unmarshal([]byte(want[id]), &exp); err != nil {
			t.Fatal(err)
		}
		for k, v := range exp {
			if !reflect.DeepEqual(data.After[k], v) {
				t.Errorf("row %v column %s = %#v, want %#v", id, k, data.After[k], v)
			}
		}
		if len(data.After) != len(exp) {
			t.Errorf("row %v has %d columns, want %d", id, len(data.After), len(exp))
		}
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("ferry exited %d after SIGTERM", code)
	}
}
