package receiver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// maxBody bounds a request body; larger requests get 413.
const maxBody = 32 << 20

// plan is what the programmed behaviour says about one request, taken in
// one critical section so that concurrent requests consume FailNext exactly.
type plan struct {
	delay      time.Duration
	status     int // non-zero: answer this before reading the body
	retryAfter string
	match      func(event.Event) bool
	matchSt    int
}

func (r *Receiver) plan() plan {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := plan{delay: r.delay, match: r.match, matchSt: r.matchSt}
	switch {
	case r.outage:
		p.status = http.StatusServiceUnavailable
	case r.failN > 0:
		r.failN--
		p.status, p.retryAfter = r.failCode, r.failHdr
	case r.flaky != nil && r.flaky.IntN(r.flakyN) == 0:
		p.status = r.flakySt
	}
	return p
}

// ServeHTTP accepts one binary, structured or batch CloudEvents request, or
// answers GET /count.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		if req.URL.Path != "/count" {
			http.Error(w, "send CloudEvents with POST or PUT; GET /count reports how many arrived", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, "{\"count\":%d}\n", r.Count())
		return
	}
	r.attempts.Add(1)
	// Read the body first: then the server notices when the client gives up
	// (it watches the connection only once the body is consumed).
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		status := http.StatusBadRequest
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "read body: "+err.Error(), status)
		return
	}
	p := r.plan()
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return // the client gave up; nobody reads an answer
		}
	}
	if p.status != 0 {
		if p.retryAfter != "" {
			w.Header().Set("Retry-After", p.retryAfter)
		}
		http.Error(w, "injected failure "+strconv.Itoa(p.status), p.status)
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	events, err := parse(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if p.match != nil {
		for _, e := range events {
			if p.match(e) {
				http.Error(w, "rejected event "+e.ID(), p.matchSt)
				return
			}
		}
	}
	r.accept(req, events)
	w.WriteHeader(http.StatusOK)
}

func (r *Receiver) accept(req *http.Request, events []event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count.Add(int64(len(events)))
	if !r.discard {
		r.events = append(r.events, events...)
		for range events {
			r.paths = append(r.paths, req.URL.Path)
		}
		r.requests = append(r.requests, &http.Request{Method: req.Method, URL: req.URL, Proto: req.Proto,
			Header: req.Header.Clone(), Host: req.Host, ContentLength: req.ContentLength})
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// parse decodes a request in any of the three modes and validates every
// event it holds. Binary-mode ce-* header values are percent-decoded first,
// as the CloudEvents HTTP binding requires of a receiver (the Go SDK leaves
// it to the application); the recorded request keeps them as sent.
func parse(req *http.Request) ([]event.Event, error) {
	if h, err := decodeAttributes(req.Header); err != nil {
		return nil, err
	} else if h != nil {
		req = req.Clone(req.Context())
		req.Header = h
	}
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer func() { _ = msg.Finish(nil) }()
	var events []event.Event
	switch msg.ReadEncoding() {
	case binding.EncodingBatch:
		batch, err := binding.ToEvents(req.Context(), msg, msg.BodyReader)
		if err != nil {
			return nil, fmt.Errorf("decode batch: %w", err)
		}
		events = batch
	case binding.EncodingBinary, binding.EncodingStructured:
		e, err := binding.ToEvent(req.Context(), msg)
		if err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		events = []event.Event{*e}
	default:
		return nil, fmt.Errorf("not a CloudEvent: no ce-specversion header and content type %q is no CloudEvents format",
			req.Header.Get("Content-Type"))
	}
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return nil, fmt.Errorf("event %d (id %q) is invalid: %w", i, events[i].ID(), err)
		}
	}
	return events, nil
}

// decodeAttributes returns a copy of h with the ce-* values percent-decoded
// (HTTP binding 3.1.3.2), or nil when no value needs it.
func decodeAttributes(h http.Header) (http.Header, error) {
	var out http.Header
	for name, values := range h {
		if len(name) < 3 || !strings.EqualFold(name[:3], "ce-") {
			continue
		}
		for i, v := range values {
			if !strings.Contains(v, "%") {
				continue
			}
			d, err := url.PathUnescape(v)
			if err != nil {
				return nil, fmt.Errorf("header %s: invalid percent-encoding %q: %w", name, v, err)
			}
			if out == nil {
				out = h.Clone()
			}
			out[name][i] = d
		}
	}
	return out, nil
}
