// Package kubefake is the slice of a Kubernetes API server that Ferry's
// Lease-based HA needs, for tests: GET, POST, PUT and PATCH of
// coordination.k8s.io/v1 Lease objects, bearer-token checked, with the real
// server's semantics where Ferry relies on them: a PUT replaces the whole
// object (what it leaves out is gone: labels, annotations, ownerReferences,
// spec fields it does not know), a JSON merge patch (RFC 7386, content type
// application/merge-patch+json) changes only what it names (null deletes),
// and a resourceVersion sent with either must be the current one, or the
// write is refused with 409 Conflict. Kubernetes cannot run on the test
// machines; this fake can.
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
	writes  map[int]int               // status -> count, of PUTs and PATCHes
}

// New returns a server that accepts requests bearing token.
func New(token string) *Server {
	return &Server{token: token, objects: map[string]map[string]any{}, writes: map[int]int{}}
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

// Conflicts returns how many updates (PUT or PATCH) were refused with 409.
func (f *Server) Conflicts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes[http.StatusConflict]
}

// Create stores obj at path as if another client had created it (an
// operator, a Helm chart: labels, annotations, ownerReferences included).
func (f *Server) Create(path string, obj map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store(path, deepCopy(obj))
}

// Object returns a copy of the object at path, or nil.
func (f *Server) Object(path string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	obj, ok := f.objects[path]
	if !ok {
		return nil
	}
	return deepCopy(obj)
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
	if ct := r.Header.Get("Content-Type"); r.Method == http.MethodPatch && ct != "application/merge-patch+json" {
		http.Error(w, `{"kind":"Status","code":415,"message":"unsupported patch type `+ct+`"}`, http.StatusUnsupportedMediaType)
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
		if !f.precondition(w, cur, meta["resourceVersion"]) {
			return
		}
		f.writes[http.StatusOK]++
		f.store(r.URL.Path, body) // the whole object: what the body lacks is gone
		f.reply(w, http.StatusOK, body)
	case http.MethodPatch:
		f.patch(w, r, body)
	default:
		http.Error(w, "method", http.StatusMethodNotAllowed)
	}
}

// patch applies a JSON merge patch; a resourceVersion in it is a
// precondition, as on the real server.
func (f *Server) patch(w http.ResponseWriter, r *http.Request, body map[string]any) {
	cur, ok := f.objects[r.URL.Path]
	if !ok {
		http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
		return
	}
	if meta, _ := body["metadata"].(map[string]any); meta != nil {
		if rv, sent := meta["resourceVersion"]; sent && !f.precondition(w, cur, rv) {
			return
		}
	}
	next := mergePatch(deepCopy(cur), body).(map[string]any)
	f.writes[http.StatusOK]++
	f.store(r.URL.Path, next)
	f.reply(w, http.StatusOK, next)
}

// precondition refuses with 409 an update whose resourceVersion is not
// the current one.
func (f *Server) precondition(w http.ResponseWriter, cur map[string]any, sent any) bool {
	if sent == cur["metadata"].(map[string]any)["resourceVersion"] {
		return true
	}
	f.writes[http.StatusConflict]++
	http.Error(w, `{"kind":"Status","code":409,"reason":"Conflict"}`, http.StatusConflict)
	return false
}

// mergePatch is RFC 7386: objects merge key by key, null deletes a key,
// anything else replaces the target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// deepCopy copies decoded JSON, so callers never share the stored maps.
func deepCopy(obj map[string]any) map[string]any { return copyValue(obj).(map[string]any) }

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = copyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyValue(e)
		}
		return out
	default:
		return v
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
