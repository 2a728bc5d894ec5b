package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

const jsonType = "application/json"

// httpError is a refusal with its status and a short reason.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// body is what a request's payload becomes.
type body struct {
	contentType string // of data
	data        []byte
	events      []*event.Event // CloudEvents carried by the request, passed through
}

// parseBody turns the raw body into event data by its content type.
func (s *Source) parseBody(r *http.Request, raw []byte) (body, *httpError) {
	if r.Header.Get("ce-specversion") != "" {
		return s.binaryCloudEvent(r, raw)
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return body{}, refuse(http.StatusUnsupportedMediaType, "missing or invalid Content-Type (accepted: %s)", strings.Join(s.cfg.Accept, ", "))
	}
	kind := mediaKind(mt)
	if !s.accepts[kind] {
		return body{}, refuse(http.StatusUnsupportedMediaType, "Content-Type %s is not accepted here (accepted: %s)", mt, strings.Join(s.cfg.Accept, ", "))
	}
	switch {
	case mt == "application/cloudevents+json":
		if err := checkStructured(raw); err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid CloudEvent: %v", err)
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid structured CloudEvent: %v", err)
		}
		return cloudEvents(&e)
	case mt == "application/cloudevents-batch+json":
		var es []*event.Event
		if err := json.Unmarshal(raw, &es); err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid CloudEvents batch: %v", err)
		}
		if len(es) == 0 {
			return body{}, refuse(http.StatusBadRequest, "empty CloudEvents batch")
		}
		var raws []json.RawMessage
		_ = json.Unmarshal(raw, &raws) // parsed above
		for i, r := range raws {
			if err := checkStructured(r); err != nil {
				return body{}, refuse(http.StatusBadRequest, "invalid CloudEvent %d of the batch: %v", i, err)
			}
		}
		return cloudEvents(es...)
	case kind == "json":
		if !json.Valid(raw) {
			var v any
			return body{}, refuse(http.StatusBadRequest, "body is not valid JSON: %v", json.Unmarshal(raw, &v))
		}
		return body{contentType: jsonType, data: raw}, nil
	case kind == "form" && s.cfg.Form == "structured":
		data, err := formJSON(raw)
		if err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid form body: %v", err)
		}
		return body{contentType: jsonType, data: data}, nil
	case kind == "xml" && s.cfg.XML == "structured":
		data, err := xmlJSON(raw)
		if err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid XML body: %v", err)
		}
		return body{contentType: jsonType, data: data}, nil
	}
	return body{contentType: ct, data: raw}, nil // text, raw form, raw XML: kept as sent
}

// mediaKind groups media types by the accept setting that covers them.
func mediaKind(mt string) string {
	switch {
	case mt == "application/cloudevents+json" || mt == "application/cloudevents-batch+json":
		return "cloudevents"
	case mt == jsonType || mt == "text/json" || strings.HasSuffix(mt, "+json"):
		return "json"
	case mt == "application/x-www-form-urlencoded":
		return "form"
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return "xml"
	case mt == "text/plain":
		return "text"
	}
	return "other"
}

func (s *Source) binaryCloudEvent(r *http.Request, raw []byte) (body, *httpError) {
	if !s.accepts["cloudevents"] {
		return body{}, refuse(http.StatusUnsupportedMediaType, "CloudEvents are not accepted here")
	}
	for name := range r.Header {
		if len(name) > 3 && strings.EqualFold(name[:3], "ce-") && !validAttributeName(strings.ToLower(name[3:])) {
			return body{}, refuse(http.StatusBadRequest, "invalid binary-mode CloudEvent: header %s: attribute names are lowercase letters and digits", name)
		}
	}
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(raw))
	msg := cehttp.NewMessageFromHttpRequest(req)
	defer msg.Finish(nil)
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		return body{}, refuse(http.StatusBadRequest, "invalid binary-mode CloudEvent: %v", err)
	}
	return cloudEvents(e)
}

func cloudEvents(es ...*event.Event) (body, *httpError) {
	for _, e := range es {
		if e == nil {
			return body{}, refuse(http.StatusBadRequest, "null CloudEvent in batch")
		}
		if err := e.Validate(); err != nil {
			return body{}, refuse(http.StatusBadRequest, "invalid CloudEvent %q: %v", e.ID(), err)
		}
	}
	return body{events: es}, nil
}

// formJSON: a form body becomes an object of its fields; a field sent once
// is a string, a field sent several times an array of strings (in order).
// Keys are sorted.
func formJSON(raw []byte) ([]byte, error) {
	vals, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteByte(':')
		var v []byte
		if len(vals[k]) == 1 {
			v, _ = json.Marshal(vals[k][0])
		} else {
			v, _ = json.Marshal(vals[k])
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
