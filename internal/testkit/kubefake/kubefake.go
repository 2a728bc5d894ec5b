// Package kubefake is the slice of a Kubernetes API server that Ferry's
// Lease-based HA needs, for tests: GET, POST and PUT of
// coordination.k8s.io/v1 Lease objects, bearer-token checked, with
// resourceVersion conflicts (409) enforced as the real server does.
// Kubernetes cannot run on the test machines; this fake can.
package kubefake

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Server is an http.Handler; create it with New.
type Server struct {
	mu      sync.Mutex
	token   string
	rv      int
	objects map[string]map[string]any // path -> object
	puts    map[int]int               // status -> count
}

// New returns a server that accepts requests bearing token.
func New(token string) *Server {
	return &Server{token: token, objects: map[string]map[string]any{}, puts: map[int]int{}}
}

// Holder returns the holderIdentity of the Lease at path ("" if none).
func (f *Server) Holder(path string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj, ok := f.objects[path]
	if !ok {
		return ""
	}
	h, _ := obj["spec"].(map[string]any)["holderIdentity"].(string)
	return h
}

// Conflicts returns how many PUTs were refused with 409.
func (f *Server) Conflicts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts[http.StatusConflict]
}

// LeasePath is the API path of a Lease.
func LeasePath(namespace, name string) string {
	return "/apis/coordination.k8s.io/v1/namespaces/" + namespace + "/leases/" + name
}

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
		return
	}
	const prefix = "/apis/coordination.k8s.io/v1/namespaces/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	var body map[string]any
	if r.Body != nil {
		data, _ := io.ReadAll(r.Body)
		if len(data) > 0 {
			if err := json.Unmarshal(data, &body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
	}
	switch r.Method {
	case http.MethodGet:
		obj, ok := f.objects[r.URL.Path]
		if !ok {
			http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
			return
		}
		f.reply(w, http.StatusOK, obj)
	case http.MethodPost:
		meta, ok := body["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		if !ok || name == "" {
			http.Error(w, `{"kind":"Status","code":400,"message":"metadata.name required"}`, http.StatusBadRequest)
			return
		}
		path := r.URL.Path + "/" + name
		if _, exists := f.objects[path]; exists {
			http.Error(w, `{"kind":"Status","code":409,"reason":"AlreadyExists"}`, http.StatusConflict)
			return
		}
		f.store(path, body)
		f.reply(w, http.StatusCreated, body)
	case http.MethodPut:
		cur, ok := f.objects[r.URL.Path]
		if !ok {
			http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
			return
		}
		meta, _ := body["metadata"].(map[string]any)
		sent := meta["resourceVersion"]
		if sent != cur["metadata"].(map[string]any)["resourceVersion"] {
			f.puts[http.StatusConflict]++
			http.Error(w, `{"kind":"Status","code":409,"reason":"Conflict"}`, http.StatusConflict)
			return
		}
		f.puts[http.StatusOK]++
		f.store(r.URL.Path, body)
		f.reply(w, http.StatusOK, body)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

func (f *Server) store(path string, obj map[string]any) {
	f.rv++
	obj["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(f.rv)
	f.objects[path] = obj
}

func (f *Server) reply(w http.ResponseWriter, code int, obj map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj)
}
