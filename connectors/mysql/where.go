package mysql

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	pmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	// The parser needs a value-expression driver for literals; the test
	// driver is the one without TiDB's type system behind it.
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// A backfill's --where is a boolean expression over the table's own
// columns. It is parsed with the TiDB parser, checked node by node against
// what a row filter needs, and rendered back from the syntax tree: the text
// the user typed never reaches the server, so nothing outside the tree
// (a second statement, a comment, a UNION after the condition) can.

// whereFunctions are the functions a condition may call: pure functions of
// their arguments and the clock. Anything reading server state (USER(),
// LOAD_FILE), sleeping (SLEEP, BENCHMARK), locking (GET_LOCK) or unknown
// here is refused.
var whereFunctions = setOf(
	"abs", "ceil", "ceiling", "floor", "round", "truncate", "mod", "sign",
	"lower", "lcase", "upper", "ucase", "length", "char_length", "character_length", "octet_length",
	"concat", "concat_ws", "substring", "substr", "left", "right", "trim", "ltrim", "rtrim",
	"replace", "locate", "instr", "lpad", "rpad", "reverse", "hex", "unhex",
	"coalesce", "ifnull", "nullif", "if", "isnull", "greatest", "least",
	"date", "time", "year", "month", "day", "dayofmonth", "dayofweek", "dayofyear", "hour", "minute", "second",
	"week", "weekday", "quarter", "last_day", "to_days", "from_days", "unix_timestamp", "from_unixtime",
	"now", "current_timestamp", "utc_timestamp", "curdate", "current_date", "utc_date", "sysdate",
	"date_add", "date_sub", "adddate", "subdate", "datediff", "timestampdiff", "timestampadd",
	"date_format", "str_to_date", "extract",
	"json_extract", "json_unquote", "json_contains", "json_length", "json_type", "json_valid",
)

// whereOperators are the binary operators a condition may use.
var whereOperators = map[opcode.Op]bool{
	opcode.LogicAnd: true, opcode.LogicOr: true, opcode.LogicXor: true,
	opcode.EQ: true, opcode.NE: true, opcode.LT: true, opcode.LE: true, opcode.GT: true, opcode.GE: true, opcode.NullEQ: true,
	opcode.Plus: true, opcode.Minus: true, opcode.Mul: true, opcode.Div: true, opcode.IntDiv: true, opcode.Mod: true,
}

// booleanOperators are the binary operators whose result is a truth value.
var booleanOperators = map[opcode.Op]bool{
	opcode.LogicAnd: true, opcode.LogicOr: true, opcode.LogicXor: true,
	opcode.EQ: true, opcode.NE: true, opcode.LT: true, opcode.LE: true, opcode.GT: true, opcode.GE: true, opcode.NullEQ: true,
}

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// errWhereEmpty is returned for a blank condition.
var errWhereEmpty = errors.New("the condition is empty")

// whereColumns resolves a column a condition names to the table's column
// of that name (MySQL column names are case-insensitive); ok is false for
// a column the table lacks, excluded true for one exclude_columns removes.
type whereColumns func(name string) (canonical string, excluded, ok bool)

// parseCondition parses cond inside a SELECT. The parser's literal driver
// panics on some input (a decimal literal of over 81 digits, found by
// FuzzRenderWhere); user input must never crash the process, so a panic
// is a refusal.
func parseCondition(cond string) (stmt ast.StmtNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			stmt, err = nil, fmt.Errorf("the SQL parser cannot read it (%v)", firstLine(fmt.Sprint(r)))
		}
	}()
	return parser.New().ParseOneStmt("SELECT 1 FROM t WHERE "+cond, "", "")
}

// renderWhere parses cond as one boolean expression over the columns
// resolves, and returns it rendered from its syntax tree. The error names
// what was not allowed.
func renderWhere(cond string, columns whereColumns) (string, error) {
	if strings.TrimSpace(cond) == "" {
		return "", errWhereEmpty
	}
	if what := commentIn(cond); what != "" {
		return "", fmt.Errorf("comments (%s) are not allowed", what)
	}
	stmt, err := parseCondition(cond)
	if err != nil {
		return "", fmt.Errorf("not one SQL condition: %s", firstLine(err.Error()))
	}
	sel, ok := stmt.(*ast.SelectStmt)
	if !ok {
		return "", fmt.Errorf("%s is not allowed: give only the condition", statementKind(stmt))
	}
	if what := selectExtras(sel); what != "" {
		return "", fmt.Errorf("%s is not allowed: give only the condition", what)
	}
	v := &whereChecker{columns: columns}
	sel.Where.Accept(v)
	if v.err != nil {
		return "", v.err
	}
	if !isBoolean(sel.Where) {
		return "", errors.New("the condition must be a comparison or a boolean expression (like id > 100 AND status = 'paid')")
	}
	var b strings.Builder
	flags := format.RestoreStringSingleQuotes | format.RestoreStringEscapeBackslash | format.RestoreKeyWordUppercase |
		format.RestoreNameBackQuotes | format.RestoreStringWithoutDefaultCharset | format.RestoreBracketAroundBinaryOperation
	if err := sel.Where.Restore(format.NewRestoreCtx(flags, &b)); err != nil {
		return "", fmt.Errorf("render the condition: %w", err)
	}
	return b.String(), nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func statementKind(stmt ast.StmtNode) string {
	if _, ok := stmt.(*ast.SetOprStmt); ok {
		return "UNION (or INTERSECT, EXCEPT)"
	}
	return "another statement"
}

// selectExtras names a clause the condition added to the wrapping SELECT.
func selectExtras(sel *ast.SelectStmt) string {
	switch {
	case sel.Where == nil:
		return "an empty condition"
	case sel.GroupBy != nil:
		return "GROUP BY"
	case sel.Having != nil:
		return "HAVING"
	case sel.WindowSpecs != nil:
		return "WINDOW"
	case sel.OrderBy != nil:
		return "ORDER BY"
	case sel.Limit != nil:
		return "LIMIT"
	case sel.LockInfo != nil:
		return "a locking clause (FOR UPDATE, LOCK IN SHARE MODE)"
	case sel.SelectIntoOpt != nil:
		return "INTO"
	case sel.With != nil:
		return "WITH"
	}
	return ""
}

// commentIn returns the comment opener found outside quoted text, or "".
// The parser would drop or (for /*! */) execute comments; a condition has
// no use for them, so they are refused rather than interpreted.
func commentIn(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			switch {
			case c == '\\' && quote != '`':
				i++
			case c == quote:
				quote = 0
			}
			continue
		}
		switch {
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '#':
			return "#"
		case strings.HasPrefix(s[i:], "/*"):
			return "/*"
		case strings.HasPrefix(s[i:], "--"):
			return "--"
		}
	}
	return ""
}

// whereChecker walks a condition and stops at the first node not allowed.
type whereChecker struct {
	columns whereColumns
	err     error
}

func (v *whereChecker) Enter(n ast.Node) (ast.Node, bool) {
	if v.err != nil {
		return n, true
	}
	v.err = v.check(n)
	return n, v.err != nil
}

func (v *whereChecker) Leave(n ast.Node) (ast.Node, bool) { return n, v.err == nil }

func (v *whereChecker) check(n ast.Node) error {
	switch n := n.(type) {
	case ast.ParamMarkerExpr: // before ValueExpr, which it implements
		return errors.New("placeholders (?) are not allowed: write the value")
	case ast.ValueExpr, *ast.ParenthesesExpr, *ast.IsNullExpr, *ast.IsTruthExpr, *ast.BetweenExpr,
		*ast.PatternLikeOrIlikeExpr, *ast.CaseExpr, *ast.WhenClause, *ast.RowExpr, *ast.TimeUnitExpr,
		*ast.FuncCastExpr, *ast.SetCollationExpr, *ast.ColumnName:
		return nil
	case *ast.PatternInExpr:
		if n.Sel != nil {
			return errors.New("subqueries are not allowed")
		}
		return nil
	case *ast.BinaryOperationExpr:
		if !whereOperators[n.Op] {
			return fmt.Errorf("operator %s is not allowed", n.Op)
		}
		return nil
	case *ast.UnaryOperationExpr:
		if n.Op != opcode.Not && n.Op != opcode.Not2 && n.Op != opcode.Minus && n.Op != opcode.Plus {
			return fmt.Errorf("operator %s is not allowed", n.Op)
		}
		return nil
	case *ast.FuncCallExpr:
		if !whereFunctions[n.FnName.L] {
			return fmt.Errorf("function %s is not allowed", strings.ToUpper(n.FnName.O))
		}
		return nil
	case *ast.ColumnNameExpr:
		return v.column(n)
	case *ast.SubqueryExpr, *ast.ExistsSubqueryExpr, *ast.CompareSubqueryExpr:
		return errors.New("subqueries are not allowed")
	case *ast.VariableExpr:
		return errors.New("variables (@name, @@name) are not allowed")
	case *ast.AggregateFuncExpr, *ast.WindowFuncExpr:
		return errors.New("aggregate and window functions are not allowed")
	}
	return fmt.Errorf("%s is not allowed", nodeName(n))
}

// column checks a column reference and rewrites it to the table's own
// spelling, unqualified.
func (v *whereChecker) column(n *ast.ColumnNameExpr) error {
	name := n.Name
	if name.Schema.O != "" || name.Table.O != "" {
		return fmt.Errorf("qualified column %s is not allowed: name the column alone", name.String())
	}
	canonical, excluded, ok := v.columns(name.Name.O)
	switch {
	case !ok:
		return fmt.Errorf("column %s is not a column of the table", name.Name.O)
	case excluded:
		return fmt.Errorf("column %s is excluded (exclude_columns) and may not be used", name.Name.O)
	}
	name.Name.O, name.Name.L = canonical, strings.ToLower(canonical)
	return nil
}

// nodeName turns *ast.MatchAgainst into "MatchAgainst" for a message.
func nodeName(n ast.Node) string {
	s := fmt.Sprintf("%T", n)
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(s, "Expr")
}

// isBoolean reports whether e yields a truth value by its form: a bare
// column or literal is not a row filter anyone means.
func isBoolean(e ast.ExprNode) bool {
	switch e := e.(type) {
	case *ast.ParenthesesExpr:
		return isBoolean(e.Expr)
	case *ast.BinaryOperationExpr:
		return booleanOperators[e.Op]
	case *ast.UnaryOperationExpr:
		return e.Op == opcode.Not || e.Op == opcode.Not2
	case *ast.IsNullExpr, *ast.IsTruthExpr, *ast.BetweenExpr, *ast.PatternInExpr, *ast.PatternLikeOrIlikeExpr:
		return true
	case ast.ValueExpr:
		return e.GetType().GetFlag()&pmysql.IsBooleanFlag != 0
	}
	return false
}
