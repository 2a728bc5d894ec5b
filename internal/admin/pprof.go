package admin

import (
	"net/http"
	"net/http/pprof"
)

// routePprof serves Go's runtime profiles for profiling a running ferry
// (`go tool pprof -http=: 'http://host:9090/debug/pprof/profile?seconds=30'`
// with the bearer token). They are work endpoints for the access guard:
// not probe or observe paths, so a caller without the token gets 401.
// The handlers are registered on this mux only, never on
// http.DefaultServeMux.
func routePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
