package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"golang.org/x/net/http/httpguts"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

const (
	contentTypeBatch = "application/cloudevents-batch+json"
	// keepAliveDrain is how much of an answer's body is read so that its
	// connection can be reused; longer bodies cost a new connection.
	keepAliveDrain = 64 << 10
)

// Encoding contexts for binding.Write: they only carry the mode.
var (
	binaryMode     = binding.WithForceBinary(context.Background())
	structuredMode = binding.WithForceStructured(context.Background())
)

// sendNext sends the next request of a lane (one event, or in batch mode as
// many leading events of lane as fit the limits and at most limit) and
// returns how many events it carried, at least one.
func (s *Sink) sendNext(ctx context.Context, events []*event.Event, lane []int, limit int) (int, error) {
	if s.cfg.Mode == ModeBatch {
		return s.sendBatch(ctx, events, lane, limit)
	}
	e := events[lane[0]]
	mode := binaryMode
	if s.cfg.Mode == ModeStructured {
		mode = structuredMode
	}
	tp, ts := tracectx.FromContext(ctx).For(lane[0], e)
	sh, err := s.shape.build(e)
	if err != nil {
		return 1, err
	}
	if err := s.limits.wait(ctx, sh.endpoint(s.endpoint)); err != nil {
		return 1, err
	}
	return 1, s.do(ctx, e, 1, webhookID(e.ID()), func(req *http.Request) error {
		setTraceHeaders(req.Header, tp, ts)
		return sh.fill(req, mode, e)
	})
}

func (s *Sink) sendBatch(ctx context.Context, events []*event.Event, lane []int, limit int) (int, error) {
	body, n, err := s.encodeBatch(events, lane, limit)
	if err != nil {
		return 1, err
	}
	tp, ts := batchTrace(tracectx.FromContext(ctx), events, lane[:n])
	if err := s.limits.wait(ctx, s.endpoint); err != nil {
		return n, err
	}
	return n, s.do(ctx, events[lane[0]], n, s.batchID(events, lane[:n]), func(req *http.Request) error {
		setTraceHeaders(req.Header, tp, ts)
		req.Header.Set("Content-Type", contentTypeBatch)
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		return nil
	})
}

// encodeBatch encodes the leading events of lane that fit limit events
// and batch_max_bytes (at least one, however large) as a JSON array of
// structured events. An event that cannot be encoded ends the batch before
// it; when it is the first, encodeBatch fails permanently.
func (s *Sink) encodeBatch(events []*event.Event, lane []int, limit int) ([]byte, int, error) {
	var body bytes.Buffer
	body.WriteByte('[')
	n := 0
	for _, i := range lane {
		if n == limit {
			break
		}
		mark := body.Len()
		if n > 0 {
			body.WriteByte(',')
		}
		if err := ferry.WriteStructured(&body, events[i]); err != nil { // writes nothing on error
			if n == 0 {
				return nil, 0, ferry.Permanent(fmt.Errorf("encode event %s as JSON: %w", events[i].ID(), err))
			}
			body.Truncate(mark)
			break
		}
		if n > 0 && body.Len()+1 > s.cfg.BatchMaxBytes {
			body.Truncate(mark)
			break
		}
		n++
	}
	body.WriteByte(']')
	return body.Bytes(), n, nil
}

// do sends one request, whose body fill writes, carrying n events starting
// with first, and classifies the outcome. id is the request's message id
// when it is signed (webhook-id): the event's id, or batchID.
func (s *Sink) do(ctx context.Context, first *event.Event, n int, id string, fill func(*http.Request) error) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, s.method, s.cfg.URL, nil)
	if err != nil {
		return ferry.Permanent(fmt.Errorf("build %s request to %s: %w", s.method, s.target, cleanURLError(err)))
	}
	req.Header = s.requestHeader()
	if err := fill(req); err != nil {
		return ferry.Permanent(fmt.Errorf("encode event %s: %w", first.ID(), err))
	}
	if err := checkHeaders(req.Header); err != nil {
		// net/http would refuse to send it, on every attempt.
		return ferry.Permanent(fmt.Errorf("build request for event %s: %w", first.ID(), err))
	}
	// The last check before the request leaves: a lane sends request after
	// request within one Write, and a fenced HA leader's ctx reports itself
	// done by the clock the moment its deadline passes (see ha.Fence.Hold),
	// before its timer closes Done, which is all the transport watches.
	if err := ctx.Err(); err != nil {
		return s.requestFailed(ctx, first, n, err)
	}
	start := time.Now()
	resp, err := s.roundTrip(ctx, req, id) // signs and authorizes last
	if err != nil {
		return s.sendFailed(ctx, first, n, err)
	}
	defer resp.Body.Close()
	s.win.answered.Add(1)
	s.win.rtt.Add(int64(time.Since(start)))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		s.win.pushback.Add(1)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, keepAliveDrain))
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.Debug("delivered", "status", resp.StatusCode, "events", n, "first_id", first.ID())
		}
		return nil
	}
	err = s.classify(resp)
	s.log.Debug("request rejected", "status", resp.StatusCode, "events", n, "first_id", first.ID(), "error", err)
	return err
}

// requestHeader returns a fresh header holding the configured ones. Their
// slices are capped so that the binding's appends never write into them.
func (s *Sink) requestHeader() http.Header {
	h := make(http.Header, len(s.headers)+12)
	for k, v := range s.headers {
		h[k] = v[:len(v):len(v)]
	}
	return h
}

// requestFailed classifies a request that got no answer. All such failures
// are transient; an ended ctx is reported as such and not logged.
func (s *Sink) requestFailed(ctx context.Context, first *event.Event, n int, err error) error {
	target := s.failedTarget(err)
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", s.method, target, ctx.Err())
	}
	cause := cleanURLError(err)
	if errors.Is(cause, context.DeadlineExceeded) {
		s.win.pushback.Add(1) // the endpoint did not answer in time
		// Only the request's own deadline is left: do not wrap it, so that
		// it is not mistaken for the caller's.
		err = fmt.Errorf("%s %s: no answer within the %v timeout", s.method, target, s.cfg.Timeout)
	} else {
		err = fmt.Errorf("%s %s: %w", s.method, target, cause)
	}
	s.log.Debug("request failed", "events", n, "first_id", first.ID(), "error", err)
	return err
}

// setTraceHeaders sets the W3C trace context headers of a request (besides
// ce-traceparent, which binary mode writes from the extension): what
// tracing middleware downstream reads.
func setTraceHeaders(h http.Header, traceparent, tracestate string) {
	if traceparent == "" {
		return
	}
	h["Traceparent"] = []string{traceparent}
	if tracestate != "" {
		h["Tracestate"] = []string{tracestate}
	}
}

// batchTrace is the trace context of a batch request: the first event's,
// when every event of the request belongs to its trace; none otherwise (a
// request has one parent, and picking one of several traces would hang the
// others' downstream spans in the wrong trace). Each event keeps its own
// traceparent extension inside the batch either way.
func batchTrace(l tracectx.Lookup, events []*event.Event, idx []int) (traceparent, tracestate string) {
	traceparent, tracestate = l.For(idx[0], events[idx[0]])
	if traceparent == "" {
		return "", ""
	}
	for _, i := range idx[1:] {
		tp, _ := l.For(i, events[i])
		if tracectx.TraceID(tp) != traceparent[3:35] {
			return "", ""
		}
	}
	return traceparent, tracestate
}

// percentEncodeAttributes percent-encodes the ce-* header values as the
// CloudEvents HTTP binding requires (3.1.3.2): every byte of the value's
// UTF-8 form outside printable ASCII, and space, '"' and '%', becomes %XX.
// A receiver that decodes per the binding gets the attribute back exactly.
func percentEncodeAttributes(h http.Header) {
	for name, values := range h {
		if len(name) < 3 || !strings.EqualFold(name[:3], "ce-") {
			continue
		}
		for i, v := range values {
			values[i] = percentEncode(v)
		}
	}
}

func percentEncode(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if needsEscape(v[i]) {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v) + 16)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// checkHeaders returns an error naming the first header whose value
// net/http would refuse to send (a control character, in Content-Type or a
// configured header).
func checkHeaders(h http.Header) error {
	for name, values := range h {
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				// The value is not quoted: configured headers are secrets.
				return fmt.Errorf("header %s: value holds a character HTTP does not allow (a control character)", name)
			}
		}
	}
	return nil
}
