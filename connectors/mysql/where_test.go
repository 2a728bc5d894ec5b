package mysql

import (
	"strings"
	"testing"
)

// testColumns is a table (id, status, total, Name, card) whose card column
// is excluded.
func testColumns(name string) (string, bool, bool) {
	for _, c := range []string{"id", "status", "total", "Name", "card"} {
		if strings.EqualFold(c, name) {
			return c, c == "card", true
		}
	}
	return "", false, false
}

func TestRenderWhereAccepts(t *testing.T) {
	for in, want := range map[string]string{
		"id > 100":                                   "(`id`>100)",
		"status = 'paid' AND total >= 10.5":          "((`status`='paid') AND (`total`>=10.5))",
		"status IN ('a', 'b') OR id BETWEEN 1 AND 9": "(`status` IN ('a','b') OR (`id` BETWEEN 1 AND 9))",
		"name LIKE 'x%'":                             "`Name` LIKE 'x%'",
		"`NAME` IS NOT NULL":                         "`Name` IS NOT NULL",
		"NOT (id = 1)":                               "NOT ((`id`=1))",
		`status = 'it''s \\ here'`:                   `(` + "`status`" + `='it''s \\ here')`,
		"LOWER(status) = 'x'":                        "(LOWER(`status`)='x')",
		"id > 1 && id < 5":                           "((`id`>1) AND (`id`<5))",
		"status = \"dq\"":                            "(`status`='dq')",
		"total > NOW() - INTERVAL 1 DAY":             "(`total`>DATE_SUB(NOW(), INTERVAL 1 DAY))",
	} {
		got, err := renderWhere(in, testColumns)
		if err != nil {
			t.Errorf("renderWhere(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("renderWhere(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRenderWhereInjection is the catalogue of what a condition must not
// smuggle into the chunk query; each refusal names what was not allowed.
func TestRenderWhereInjection(t *testing.T) {
	for in, want := range map[string]string{
		"": "empty",
		"1=1 UNION SELECT card, 1, 1, 1, 1 FROM shop.orders": "UNION",
		"id IN (SELECT id FROM shop.orders)":                 "subqueries",
		"EXISTS (SELECT 1)":                                  "subqueries",
		"id = (SELECT MAX(id) FROM shop.orders)":             "subqueries",
		"id > ANY (SELECT id FROM x)":                        "subqueries",
		"id = 1 -- ' and more":                               "comments (--)",
		"id = 1 # x":                                         "comments (#)",
		"id = 1 /* x */":                                     "comments (/*)",
		"id = 1 /*!50000 UNION SELECT 1 */":                  "comments (/*)",
		"id = @x":                                            "variables",
		"id = @@version":                                     "variables",
		"SLEEP(5) = 0":                                       "function SLEEP",
		"BENCHMARK(100000000, MD5('x')) = 0":                 "function BENCHMARK",
		"LOAD_FILE('/etc/passwd') IS NOT NULL":               "function LOAD_FILE",
		"id = 1 INTO OUTFILE '/tmp/x'":                       "INTO",
		"id = 1; DROP TABLE shop.orders":                     "not one SQL condition",
		"id = 1; SELECT 1":                                   "not one SQL condition",
		"card = '4111'":                                      "column card is excluded",
		"CARD IS NOT NULL":                                   "column CARD is excluded",
		"`card` > ''":                                        "column card is excluded",
		"orders.card > ''":                                   "qualified column",
		"shop.orders.id > 0":                                 "qualified column",
		"nosuch = 1":                                         "column nosuch is not a column",
		"`id` = 1` UNION SELECT 1":                           "not one SQL condition",
		"id = 1 ORDER BY id":                                 "ORDER BY",
		"id = 1 LIMIT 1":                                     "LIMIT",
		"id = 1 GROUP BY id":                                 "GROUP BY",
		"id = 1 FOR UPDATE":                                  "locking clause",
		"id = ?":                                             "placeholders",
		"id":                                                 "boolean expression",
		"'x'":                                                "boolean expression",
		"COUNT(id) > 1":                                      "aggregate",
		"USER() = 'root'":                                    "function USER",
		"DATABASE() = 'shop'":                                "function DATABASE",
		"GET_LOCK('x', 10) = 1":                              "function GET_LOCK",
		"id = 1 UNION ALL SELECT 1":                          "UNION",
		"id = 1 ＵＮＩＯＮ SELECT 1":                              "not one SQL condition",
		"st\u0061tus = 1 UNION SELECT 1":                     "UNION",
		"status REGEXP '(a+)+$'":                             "not allowed",
		"id = 1 PROCEDURE ANALYSE()":                         "not one SQL condition",
		"MATCH (status) AGAINST ('x')":                       "MatchAgainst is not allowed",
		"id = DEFAULT(id)":                                   "not allowed",
		"id = VALUES(id)":                                    "not allowed",
	} {
		got, err := renderWhere(in, testColumns)
		if err == nil {
			t.Errorf("renderWhere(%q) accepted: %s", in, got)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("renderWhere(%q) = %v, want it to name %q", in, err, want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("renderWhere(%q): refusal is not one line: %q", in, err)
		}
	}
}

// FuzzRenderWhere: whatever is accepted renders to a condition that is
// accepted again and renders to itself (up to the brackets rendering adds
// around each operation) and never names the excluded column.
func FuzzRenderWhere(f *testing.F) {
	for _, s := range []string{"id > 1", "status = 'a''b'", "id IN (1,2) AND NOT name LIKE '%x'", "card = 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := renderWhere(in, testColumns)
		if err != nil {
			return
		}
		again, err := renderWhere(out, testColumns)
		if err != nil {
			t.Fatalf("rendered %q from %q is refused: %v", out, in, err)
		}
		if noBrackets(again) != noBrackets(out) {
			t.Fatalf("rendering is not stable: %q -> %q -> %q", in, out, again)
		}
		if strings.Contains(strings.ToLower(out), "card") {
			t.Fatalf("%q renders %q, naming the excluded column", in, out)
		}
	})
}

func noBrackets(s string) string { return strings.NewReplacer("(", "", ")", "").Replace(s) }
