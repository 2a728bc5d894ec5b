package webhook

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-cdc/ferry"
)

var _ ferry.StatusReporter = (*Source)(nil)

// ops is what Status reports beyond the journal depth: requests answered
// per status code, whether the listener is bound, and the receipt times
// of the batches handed to the pipeline and not yet acknowledged.
type ops struct {
	bound atomic.Bool
	codes [600]atomic.Uint64 // by HTTP status code; others count as 0

	mu          sync.Mutex
	outstanding []time.Time // oldest first; the pipeline acks in read order
}

// counting wraps h so that every answer is counted by its status code.
func (o *ops) counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		code := cw.code
		if code == 0 {
			code = http.StatusOK // nothing written: net/http answers 200
		}
		if code < 0 || code >= len(o.codes) {
			code = 0
		}
		o.codes[code].Add(1)
	})
}

// handedOut records the receipt time of the oldest request of a batch
// Read returned; acked forgets the oldest such batch.
func (o *ops) handedOut(received time.Time) {
	o.mu.Lock()
	o.outstanding = append(o.outstanding, received)
	o.mu.Unlock()
}

func (o *ops) acked() {
	o.mu.Lock()
	if len(o.outstanding) > 0 {
		o.outstanding[0] = time.Time{}
		o.outstanding = o.outstanding[1:]
	}
	o.mu.Unlock()
}

// Status reports the listener, the requests answered by status code, the
// journal depth and, as lag, how long the oldest request handed to the
// pipeline has waited for every sink. See ferry.StatusReporter.
func (s *Source) Status() ferry.SourceStatus {
	out := ferry.SourceStatus{State: ferry.StateConnecting, Buffered: max(s.depth.Load(), 0), Requests: map[int]uint64{}}
	select {
	case <-s.stopping:
		out.State = ferry.StateStopped
	default:
		if s.ops.bound.Load() {
			out.State, out.Connected = ferry.StateStreaming, true
		}
	}
	for code := range s.ops.codes {
		if n := s.ops.codes[code].Load(); n > 0 {
			out.Requests[code] = n
		}
	}
	s.ops.mu.Lock()
	if len(s.ops.outstanding) > 0 {
		out.Lag = max(time.Since(s.ops.outstanding[0]), 0)
	}
	s.ops.mu.Unlock()
	return out
}

// codeWriter remembers the status code a handler answered with (for the
// request counts and the request's span).
type codeWriter struct {
	http.ResponseWriter
	code int
}

func (w *codeWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx answers are interim
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
