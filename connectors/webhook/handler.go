package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ferry-cdc/ferry"
)

var errStopping = errors.New("source is stopping")

// ServeHTTP accepts one request: checks, verification, parsing, durable
// journaling, and only then 2xx (or, with ack: delivered, 2xx once every
// sink has it).
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tc, w, endTrace := s.startTrace(w, r)
	if endTrace != nil {
		defer endTrace()
	}
	select {
	case <-s.stopping:
		s.refuse(w, refuse(http.StatusServiceUnavailable, "shutting down"), s.cfg.Buffer.RetryAfter)
		return
	default:
	}
	if herr, wait := s.admit(r); herr != nil {
		s.refuse(w, herr, wait)
		return
	}
	raw, herr := s.readBody(w, r)
	if herr != nil {
		s.refuse(w, herr, 0)
		return
	}
	if err := s.verify(r.Header, raw, time.Now()); err != nil {
		s.stats.Unauthorized.Add(1)
		s.log.Warn("webhook request refused: verification failed", "remote", r.RemoteAddr, "reason", err.Error())
		s.refuse(w, refuse(http.StatusUnauthorized, "%v", err), 0)
		return
	}
	b, herr := s.parseBody(r, raw)
	if herr != nil {
		s.refuse(w, herr, 0)
		return
	}
	s.accept(w, r, b, tc)
}

// admit checks what needs no body: method, rate, buffer room.
func (s *Source) admit(r *http.Request) (*httpError, time.Duration) {
	if !slices.Contains(s.cfg.Methods, r.Method) {
		return refuse(http.StatusMethodNotAllowed, "method %s not allowed (allowed: %s)", r.Method, strings.Join(s.cfg.Methods, ", ")), 0
	}
	if s.limiter != nil {
		res := s.limiter.Reserve()
		if d := res.Delay(); d > 0 {
			res.Cancel()
			s.stats.Throttled.Add(1)
			return refuse(http.StatusTooManyRequests, "rate limit exceeded"), d
		}
	}
	if s.depth.Load() >= int64(s.cfg.Buffer.MaxEntries) {
		s.stats.Full.Add(1)
		return refuse(http.StatusServiceUnavailable, "buffer full: the sinks are behind"), s.cfg.Buffer.RetryAfter
	}
	return nil, 0
}

func (s *Source) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, refuse(http.StatusRequestEntityTooLarge, "body exceeds %d bytes", s.cfg.MaxBodyBytes)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, "cannot read body: %v", err)
	}
	return raw, nil
}

// accept journals the request and answers it.
func (s *Source) accept(w http.ResponseWriter, r *http.Request, b body, tc TraceContext) {
	id := s.deliveryID(r, b)
	recs, ids, err := s.records(r, b, id, tc)
	if err != nil {
		s.refuse(w, refuse(http.StatusBadRequest, "%v", err), 0)
		return
	}
	answerBody, _ := json.Marshal(map[string][]string{"ids": ids})
	answer := Answer{Status: http.StatusOK, Body: answerBody, Time: time.Now()}
	seqs, prior, err := s.journal.Accept(r.Context(), s.name, id, recs, answer)
	if err != nil {
		s.stats.Failed.Add(1)
		s.log.Error("cannot journal a webhook request; answering 500", "error", err)
		s.refuse(w, refuse(http.StatusInternalServerError, "could not store the request; retry"), 0)
		return
	}
	if prior != nil {
		s.stats.Duplicates.Add(1)
		w.Header().Set("Ferry-Duplicate", "true")
		answer, seqs = *prior, prior.Seqs
	} else {
		s.stats.Accepted.Add(1)
		s.depth.Add(int64(len(seqs)))
		select {
		case s.appended <- struct{}{}:
		default:
		}
	}
	if s.cfg.Ack == "delivered" {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.AckTimeout)
		defer cancel()
		if err := s.waitDelivered(ctx, seqs); err != nil {
			// Stored, so it will be delivered; a retry with the same delivery
			// id gets the real answer once it is.
			s.refuse(w, refuse(http.StatusServiceUnavailable, "accepted but not yet delivered; retry with the same delivery id"), s.cfg.Buffer.RetryAfter)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(answer.Status)
	_, _ = w.Write(answer.Body)
}

// deliveryID is the id a retry repeats: the configured header, or the
// expression's value; "" when there is none (no deduplication).
func (s *Source) deliveryID(r *http.Request, b body) string {
	switch {
	case s.cfg.IDHeader != "":
		return strings.TrimSpace(r.Header.Get(s.cfg.IDHeader))
	case s.idExpr != nil:
		return deliveryID(s.idExpr, r, b)
	}
	return ""
}

// records builds one journal record per event the request carries; each
// gets its id now, before the answer, so a replay keeps it. tc is the
// request's trace context.
func (s *Source) records(r *http.Request, b body, deliveryID string, tc TraceContext) ([][]byte, []string, error) {
	now := time.Now().UnixNano()
	header := r.Header.Clone()
	for _, h := range s.cfg.SecretHeaders() {
		header.Del(h)
	}
	base := record{Received: now, Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr, Header: header,
		Query: r.URL.RawQuery, Extensions: s.extensions(r, tc)}
	if len(b.events) == 0 {
		base.ID, base.ContentType, base.Data = deliveryID, b.contentType, b.data
		if base.ID == "" {
			base.ID = uuid.NewString()
		}
		rec, err := json.Marshal(base)
		return [][]byte{rec}, []string{base.ID}, err
	}
	var recs [][]byte
	var ids []string
	for _, e := range b.events {
		traceEvent(e, tc)
		ev, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		rec := base
		rec.ID, rec.Event = e.ID(), ev
		enc, err := json.Marshal(rec)
		if err != nil {
			return nil, nil, err
		}
		recs, ids = append(recs, enc), append(ids, rec.ID)
	}
	return recs, ids, nil
}

// extensions copies configured headers, and the W3C trace context tc, into
// CloudEvent extensions.
func (s *Source) extensions(r *http.Request, tc TraceContext) map[string]string {
	var out map[string]string
	set := func(k, v string) {
		if v == "" {
			return
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	for ext, header := range s.cfg.Extensions {
		set(ext, ferry.EscapeAttributeText(r.Header.Get(header)))
	}
	// After the configured ones: a header mapped to traceparent must not
	// replace the validated (or Ferry's own) trace context.
	set("traceparent", tc.Traceparent)
	set("tracestate", tc.Tracestate)
	return out
}

func (s *Source) refuse(w http.ResponseWriter, e *httpError, retryAfter time.Duration) {
	if e.status != http.StatusUnauthorized && e.status != http.StatusServiceUnavailable && e.status != http.StatusTooManyRequests {
		s.stats.Rejected.Add(1)
		s.log.Debug("webhook request refused", "status", e.status, "reason", e.msg)
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	msg, _ := json.Marshal(map[string]string{"error": e.msg})
	_, _ = w.Write(msg)
}
