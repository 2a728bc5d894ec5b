package admin

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferry-cdc/ferry"
)

// The shape every handler of the work API follows, so that each answers
// its caller's mistakes alike: a route names its methods (any other gets a
// JSON 405 with Allow), query parameters are read by queryParams (an
// unknown or repeated one is a 400 naming it), a request body by readJSON,
// a missing field is reported by required, and every error is written by
// writeError as {"error", "field"}.

// methods maps the HTTP methods a path answers to their handlers.
type methods map[string]http.HandlerFunc

// route registers path's handlers, and for every other method a 405 in the
// API's JSON error shape: the mux's own 405 is plain text, which clients
// decoding errorBody cannot read.
func route(mux *http.ServeMux, path string, m methods) {
	allow := make([]string, 0, len(m)+1)
	for method, h := range m {
		mux.HandleFunc(method+" "+path, h)
		allow = append(allow, method)
		if method == http.MethodGet {
			allow = append(allow, http.MethodHead) // the mux answers HEAD with GET's handler
		}
	}
	slices.Sort(allow)
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed,
			errorBody{Error: "method " + r.Method + " not allowed on " + path + ": use " + strings.Join(allow, " or ")})
	})
}

// queryParams returns r's query parameters, each given at most once and
// each one of allowed; a parameter missing from the query is "".
func queryParams(r *http.Request, allowed ...string) (map[string]string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, ferry.Invalid("query", "unreadable: %w", err)
	}
	out := make(map[string]string, len(allowed))
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch {
		case !slices.Contains(allowed, name):
			return nil, ferry.Invalid(name, "unknown query parameter (known: %s)", strings.Join(allowed, ", "))
		case len(q[name]) > 1:
			return nil, ferry.Invalid(name, "given %d times, want once", len(q[name]))
		}
		out[name] = q[name][0]
	}
	return out, nil
}

// required reports the first of fields (name, value pairs) that is empty.
func required(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return ferry.Invalid(fields[i], "required")
		}
	}
	return nil
}

// writeList answers a listing: an empty one is [], never null.
func writeList[T any](w http.ResponseWriter, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, items)
}

// withQuery appends the non-empty of params (name, value pairs) to path.
func withQuery(path string, params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			q.Set(params[i], params[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
