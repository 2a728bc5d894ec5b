package mysql

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/text/encoding/charmap"

	"github.com/ferry-cdc/ferry"
)

func TestDecoders(t *testing.T) {
	cases := []struct {
		name string
		dec  decodeFunc
		raw  any
		want any
	}{
		{"tinyint signed", signedInt, int8(-128), int64(-128)},
		{"tinyint unsigned 255", unsignedInt(8), int8(-1), uint64(255)},
		{"smallint unsigned", unsignedInt(16), int16(-1), uint64(65535)},
		{"mediumint unsigned", unsignedInt(24), int32(-1), uint64(16777215)},
		{"int unsigned", unsignedInt(32), int32(-1), uint64(4294967295)},
		{"bigint unsigned max", unsignedInt(64), int64(-1), uint64(18446744073709551615)},
		{"bigint signed min", signedInt, int64(-9223372036854775808), int64(-9223372036854775808)},
		{"bit", bitValue, int64(5), uint64(5)},
		{"decimal", decimalValue, "-12345678901234567890.123456789", "-12345678901234567890.123456789"},
		{"year", yearValue, 2024, int64(2024)},
		{"year zero", yearValue, 0, nil},
		{"date", dateValue, "2024-02-29", "2024-02-29"},
		{"zero date", dateValue, "0000-00-00", nil},
		{"zero month", dateValue, "2024-00-10", nil},
		{"datetime6", datetimeValue(6), "2024-02-29 23:59:59.123456", "2024-02-29T23:59:59.123456"},
		{"datetime3 padded", datetimeValue(3), "2024-02-29 23:59:59", "2024-02-29T23:59:59.000"},
		{"datetime0", datetimeValue(0), "1000-01-01 00:00:00", "1000-01-01T00:00:00"},
		{"zero datetime", datetimeValue(6), "0000-00-00 00:00:00.000000", nil},
		{"timestamp6", timestampValue(6), "2038-01-19 03:14:07.999999", "2038-01-19T03:14:07.999999Z"},
		{"zero timestamp", timestampValue(0), "0000-00-00 00:00:00", nil},
		{"time neg max fsp3", timeValue(3), "-838:59:59", "-838:59:59.000"},
		{"time fsp6", timeValue(6), "12:00:00.000001", "12:00:00.000001"},
		{"time fsp0", timeValue(0), "00:00:00", "00:00:00"},
		{"enum", enumValue([]string{"red", "green"}), int64(2), "green"},
		{"enum invalid", enumValue([]string{"red"}), int64(0), ""},
		{"set", setValue([]string{"a", "b", "c"}), int64(5), []string{"a", "c"}},
		{"set empty", setValue([]string{"a"}), int64(0), []string{}},
		{"binary padded", fixedBinaryValue(4), "\x01", []byte{1, 0, 0, 0}},
		{"varbinary", binaryValue, "\x00\xff", []byte{0, 0xff}},
		{"blob", binaryValue, []byte{1, 2}, []byte{1, 2}},
		{"text utf8", textValue(nil), []byte("caf\xc3\xa9 \xf0\x9f\x9a\x80"), "café 🚀"},
		{"latin1", textValue(charmap.Windows1252.NewDecoder()), "caf\xe9 \x80", "café €"},
		{"json", jsonValue, `{"a": [1, 2]}`, json.RawMessage(`{"a": [1, 2]}`)},
		{"json invalid stays text", jsonValue, []byte("{oops"), "{oops"},
		{"json empty is null", jsonValue, []byte{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.dec(c.raw); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("decode(%#v) = %#v, want %#v", c.raw, got, c.want)
			}
		})
	}
}

func TestFixedLength(t *testing.T) {
	// BINARY(16) in utf8mb4 tables: type STRING, meta 0xfe10; CHAR(100) utf8mb4 = 400 bytes: meta 0xee90.
	cases := map[uint16]int{16: 16, 0xfe10: 16, 0xee90: 400, 0xfeff: 255}
	for meta, want := range cases {
		if got := fixedLength(meta); got != want {
			t.Errorf("fixedLength(%#x) = %d, want %d", meta, got, want)
		}
	}
}

func TestParsePositionText(t *testing.T) {
	cases := []struct {
		in   string
		want position
		err  bool
	}{
		{in: "mysql-bin.000003:4", want: position{File: "mysql-bin.000003", Pos: 4}},
		{in: "0-1-100", want: position{GTID: "0-1-100"}},
		{in: "0-1-100, 7-2-5", want: position{GTID: "0-1-100,7-2-5"}},
		{in: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-100", want: position{GTID: "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-100"}},
		{in: "3E11FA47-71CA-11E1-9E33-C80AA9429562:23", want: position{GTID: "3E11FA47-71CA-11E1-9E33-C80AA9429562:23"}},
		{in: "mysql-bin.000003:2", err: true},
		{in: "mysql-bin.000003", err: true},
		{in: "latest", err: true},
		{in: "", err: true},
	}
	for _, c := range cases {
		got, err := parsePositionText(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parsePositionText(%q) = %+v, %v; want %+v, err=%v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestPositionCodecRoundTrip(t *testing.T) {
	for _, text := range []string{"mysql-bin.000009:1234", "0-1-5,1-1-9"} {
		b, err := Codec{}.ParsePosition(text)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Codec{}.FormatPosition(b)
		if err != nil || back != text {
			t.Fatalf("round trip %q -> %s -> %q, %v", text, b, back, err)
		}
	}
	if s := (position{File: "b.1", Pos: 9, GTID: "0-1-2"}).String(); s != "b.1:9 gtid=0-1-2" {
		t.Fatalf("String() = %q", s)
	}
}

func TestFilter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Include = []string{"shop.*", "crm.contacts"}
	cfg.Exclude = []string{"shop.tmp_*"}
	cfg.ExcludeColumns = []string{"*.*.ssn", "shop.orders.secret"}
	f, err := newFilter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[[2]string]bool{
		{"shop", "orders"}: true, {"shop", "tmp_x"}: false, {"shopping", "orders"}: false,
		{"crm", "contacts"}: true, {"crm", "other"}: false, {"mysql", "user"}: false,
	}
	for tb, want := range tables {
		if got := f.table(tb[0], tb[1]); got != want {
			t.Errorf("table(%s.%s) = %v, want %v", tb[0], tb[1], got, want)
		}
	}
	if f.column("crm", "contacts", "ssn") || f.column("shop", "orders", "secret") || !f.column("shop", "orders", "total") {
		t.Error("column exclusion wrong")
	}
	all, _ := newFilter(DefaultConfig())
	if !all.table("any", "thing") || all.table("information_schema", "TABLES") {
		t.Error("empty include must take every non-system table")
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Include = []string{"nodot"}
	c.Start = "somewhere"
	c.Flavor = "oracle"
	err := ferry.CheckConfig(c)
	for _, want := range []string{"addr: is required", "user: is required", "server_id: is required", "flavor: must be", "include[0]: pattern \"nodot\"", "start: must be latest"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; missing %q", err, want)
		}
	}
}

// TestFilterNamesMatchLikeMySQL: column names match case-insensitively
// always; database and table names only when the server's
// lower_case_table_names is 1 or 2.
func TestFilterNamesMatchLikeMySQL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Include = []string{"Shop.Orders", "crm.*"}
	cfg.Exclude = []string{"crm.TMP_*"}
	cfg.ExcludeColumns = []string{"shop.orders.SSN", "*.*.Card_*"}
	for _, lctn := range []string{"0", "1", "2"} {
		f, err := newFilter(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.setTableNameCase(lctn)
		fold := lctn != "0"
		for _, tc := range []struct {
			db, table string
			want      bool
		}{
			{"Shop", "Orders", true}, {"shop", "orders", fold}, {"SHOP", "ORDERS", fold},
			{"crm", "tmp_x", !fold}, {"crm", "TMP_x", false}, {"crm", "contacts", true},
		} {
			if got := f.table(tc.db, tc.table); got != tc.want {
				t.Errorf("lower_case_table_names=%s: table(%s.%s) = %v, want %v", lctn, tc.db, tc.table, got, tc.want)
			}
		}
		for _, col := range []string{"ssn", "SSN", "Ssn", "card_number", "CARD_NO"} {
			if f.column("shop", "orders", col) {
				t.Errorf("lower_case_table_names=%s: column %s of shop.orders kept; exclude_columns matches it", lctn, col)
			}
		}
		if f.column("Shop", "Orders", "ssn") == fold {
			t.Errorf("lower_case_table_names=%s: Shop.Orders.ssn exclusion must follow the table name rule", lctn)
		}
	}
}
