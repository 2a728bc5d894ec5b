// Package ebfake is a fake AWS EventBridge PutEvents endpoint for tests:
// the real wire format (AWS JSON 1.1, X-Amz-Target: AWSEvents.PutEvents,
// a SigV4 Authorization header) and the real limits (1 to 10 entries,
// 256 KB of entries per call counted as AWS counts them, required fields,
// Detail a JSON object), with throttling and partial failures on demand.
package ebfake

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Entry is an accepted entry.
type Entry struct {
	Source       string   `json:"Source"`
	DetailType   string   `json:"DetailType"`
	Detail       string   `json:"Detail"`
	EventBusName string   `json:"EventBusName"`
	Resources    []string `json:"Resources"`
	Time         *float64 `json:"Time"` // epoch seconds
	TraceHeader  string   `json:"TraceHeader"`
}

// Size is the entry's size as AWS counts it toward the call limit.
func (e Entry) Size() int {
	n := len(e.Source) + len(e.DetailType) + len(e.Detail)
	if e.Time != nil {
		n += 14
	}
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// Server is the fake. Set its knobs at any time; they are safe to change
// while requests are served.
type Server struct {
	mu       sync.Mutex
	accepted []Entry
	calls    int

	throttle atomic.Int64 // the next N calls fail with ThrottlingException
	flaky    *rand.Rand   // non-nil: throttle one call in flakyN at random (under mu)
	flakyN   int
	failFn   atomic.Pointer[func(Entry) string] // per-entry error code, "" accepts
}

// New returns an empty fake.
func New() *Server { return &Server{} }

// ThrottleNext makes the next n calls fail with 400 ThrottlingException.
func (s *Server) ThrottleNext(n int) { s.throttle.Store(int64(n)) }

// ThrottleRandomly makes one call in oneIn fail with ThrottlingException,
// picked at random from seed; oneIn 0 stops it.
func (s *Server) ThrottleRandomly(oneIn int, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flaky, s.flakyN = nil, oneIn
	if oneIn > 0 {
		s.flaky = rand.New(rand.NewPCG(seed, 0))
	}
}

// throttledAtRandom reports whether ThrottleRandomly picks this call.
func (s *Server) throttledAtRandom() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flaky != nil && s.flaky.IntN(s.flakyN) == 0
}

// FailEntries makes entries for which f returns a code fail with it (a
// partial failure: HTTP 200 with FailedEntryCount).
func (s *Server) FailEntries(f func(Entry) string) { s.failFn.Store(&f) }

// Accepted returns the accepted entries in order.
func (s *Server) Accepted() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Entry(nil), s.accepted...)
}

// Calls counts PutEvents calls that reached the limit checks.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		apiError(w, 404, "UnknownOperationException", "no such operation")
		return
	case r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents":
		apiError(w, 400, "UnknownOperationException", "X-Amz-Target must be AWSEvents.PutEvents")
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		apiError(w, 400, "SerializationException", "Content-Type must be application/x-amz-json-1.1")
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="):
		apiError(w, 403, "MissingAuthenticationTokenException", "missing SigV4 Authorization")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct{ Entries []Entry }
	if err := json.Unmarshal(body, &in); err != nil {
		apiError(w, 400, "SerializationException", err.Error())
		return
	}
	if msg := s.checkCall(in.Entries); msg != "" {
		apiError(w, 400, "ValidationException", msg)
		return
	}
	if s.throttle.Add(-1) >= 0 || s.throttledAtRandom() {
		apiError(w, 400, "ThrottlingException", "Rate exceeded")
		return
	}
	s.answer(w, in.Entries)
}

// checkCall enforces the per-call limits.
func (s *Server) checkCall(entries []Entry) string {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if len(entries) < 1 || len(entries) > 10 {
		return fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10 (got %d)", len(entries))
	}
	total := 0
	for _, e := range entries {
		total += e.Size()
	}
	if total > 256*1024 {
		return fmt.Sprintf("Total size of the entries in the request is over the limit (%d bytes)", total)
	}
	return ""
}

// answer accepts or fails each entry and writes the PutEvents result.
func (s *Server) answer(w http.ResponseWriter, entries []Entry) {
	type result struct {
		EventId      string `json:",omitempty"`
		ErrorCode    string `json:",omitempty"`
		ErrorMessage string `json:",omitempty"`
	}
	out := struct {
		FailedEntryCount int
		Entries          []result
	}{}
	var fail func(Entry) string
	if f := s.failFn.Load(); f != nil {
		fail = *f
	}
	s.mu.Lock()
	for _, e := range entries {
		code, msg := entryError(e)
		if code == "" && fail != nil {
			code, msg = fail(e), "injected failure"
		}
		if code != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, result{ErrorCode: code, ErrorMessage: msg})
			continue
		}
		s.accepted = append(s.accepted, e)
		out.Entries = append(out.Entries, result{EventId: fmt.Sprintf("fake-%d", len(s.accepted))})
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// entryError checks one entry as the service does.
func entryError(e Entry) (code, msg string) {
	switch {
	case e.Source == "" || e.DetailType == "" || e.Detail == "":
		return "InvalidArgument", "Parameters Source, DetailType and Detail are required"
	case strings.HasPrefix(e.Source, "aws."):
		return "NotAuthorizedForSourceException", "Not authorized for the source"
	case len(e.DetailType) > 128:
		return "InvalidArgument", "DetailType is longer than 128"
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(e.Detail), &obj); err != nil {
		return "MalformedDetail", "Detail is malformed"
	}
	return "", ""
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
