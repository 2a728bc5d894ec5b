package transform

import (
	"slices"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"
)

// The parts of the rule environment that expressions evaluated elsewhere
// (the event expressions of sinks, connectors/eventexpr) share, so that a
// user writes the same expression in a rule and in a sink.

// HelperFunctions returns the deterministic rule helpers (hash, mask,
// without, pick, rename, json) and the rules' numeric and time zone
// options. now() is left out: a sink evaluates its expressions again on
// every retry and must build the same request each time.
func HelperFunctions() []cel.EnvOption {
	return append([]cel.EnvOption{cel.CrossTypeNumericComparisons(true), cel.DefaultUTCTimeZone(true)},
		slices.Clone(helperFunctions)...)
}

// AppendJSON appends a CEL value as JSON, map keys sorted, as rules encode
// the data they build: the same value always gives the same bytes.
func AppendJSON(dst []byte, v ref.Val) ([]byte, error) { return appendCEL(dst, v) }

// DecodeJSON parses JSON text the way rules see it (json(s), a webhook's
// body): whole numbers are int64, other numbers float64.
func DecodeJSON(b []byte) (any, error) { return decodeJSONValue(b) }
