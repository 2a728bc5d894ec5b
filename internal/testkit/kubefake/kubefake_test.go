package kubefake

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUpdateSemantics: the fake does what the real API server does with
// the requests Ferry sends: a PUT replaces the object, a merge patch merges
// (null deletes), and a stale resourceVersion is refused with 409 either
// way.
func TestUpdateSemantics(t *testing.T) {
	f := New("tok")
	srv := httptest.NewServer(f)
	defer srv.Close()
	path := LeasePath("apps", "l")
	f.Create(path, map[string]any{"metadata": map[string]any{"name": "l", "labels": map[string]any{"team": "data"}},
		"spec": map[string]any{"holderIdentity": "a", "strategy": "X"}})
	rv := func() string { return f.Object(path)["metadata"].(map[string]any)["resourceVersion"].(string) }
	send := func(method, ctype, body string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		req.Header.Set("Content-Type", ctype)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	const merge = "application/merge-patch+json"
	if code := send(http.MethodPatch, "application/json-patch+json", `[]`); code != http.StatusUnsupportedMediaType {
		t.Errorf("JSON patch: %d, want 415 (only merge patches are served)", code)
	}
	if code := send(http.MethodPatch, merge, `{"metadata":{"resourceVersion":"0"},"spec":{"holderIdentity":"b"}}`); code != http.StatusConflict {
		t.Errorf("stale patch: %d, want 409", code)
	}
	if code := send(http.MethodPatch, merge, `{"metadata":{"resourceVersion":"`+rv()+`"},"spec":{"holderIdentity":"b","renewTime":"t"}}`); code != http.StatusOK {
		t.Fatalf("patch: %d", code)
	}
	obj := f.Object(path)
	spec, labels := obj["spec"].(map[string]any), obj["metadata"].(map[string]any)["labels"].(map[string]any)
	if spec["holderIdentity"] != "b" || spec["renewTime"] != "t" || spec["strategy"] != "X" || labels["team"] != "data" {
		t.Errorf("after the merge patch: %v", obj)
	}
	if code := send(http.MethodPatch, merge, `{"spec":{"holderIdentity":null}}`); code != http.StatusOK {
		t.Fatalf("unconditional patch: %d", code)
	}
	if _, ok := f.Object(path)["spec"].(map[string]any)["holderIdentity"]; ok || f.Holder(path) != "" {
		t.Errorf("null did not delete holderIdentity: %v", f.Object(path))
	}
	if code := send(http.MethodPut, "application/json", `{"metadata":{"name":"l","resourceVersion":"1"},"spec":{}}`); code != http.StatusConflict {
		t.Errorf("stale PUT: %d, want 409", code)
	}
	if code := send(http.MethodPut, "application/json", `{"metadata":{"name":"l","resourceVersion":"`+rv()+`"},"spec":{"holderIdentity":"c"}}`); code != http.StatusOK {
		t.Fatalf("PUT: %d", code)
	}
	if obj := f.Object(path); obj["metadata"].(map[string]any)["labels"] != nil || obj["spec"].(map[string]any)["strategy"] != nil {
		t.Errorf("a PUT keeps what it did not send: %v", obj)
	}
	if f.Conflicts() != 2 {
		t.Errorf("Conflicts = %d, want 2", f.Conflicts())
	}
}
