package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"golang.org/x/net/http/httpguts"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/eventexpr"
	"github.com/ferry-cdc/ferry/transform"
)

// RequestConfig is the `request` key: CEL expressions over each event
// (the variables of connectors/eventexpr: event, data, id, type, subject,
// ...) that shape its request for an endpoint that does not speak
// CloudEvents. Every expression is compiled when the configuration is
// validated.
type RequestConfig struct {
	// URL gives each event's address, an absolute http:// or https:// one
	// (a string); empty: the sink's url.
	URL string `yaml:"url" ferry:"example='\"https://crm.internal/api/customers/\" + event.subject'"`
	// Headers gives a header per event (name: expression to a string); an
	// empty string leaves the header out.
	Headers map[string]string `yaml:"headers"`
	// Body gives the request body instead of the CloudEvents binding's: a
	// map or list is sent as JSON (keys sorted), a string or bytes as they
	// are.
	Body string `yaml:"body"`
	// ContentType is the body's Content-Type; empty: application/json for
	// JSON, text/plain; charset=utf-8 for a string, application/octet-stream
	// for bytes. Only with body.
	ContentType string `yaml:"content_type"`
	// CloudEventsHeaders keeps the event's attributes as ce-* headers next
	// to a body from `body` (tracing, deduplication by ce-id); false sends a
	// plain request. Only with body.
	CloudEventsHeaders bool `yaml:"cloudevents_headers" ferry:"default=true"`
}

// Content types of a body by the type of its expression's result.
const (
	contentTypeJSON  = "application/json"
	contentTypeText  = "text/plain; charset=utf-8"
	contentTypeBytes = "application/octet-stream"
)

// errHeaderInjection is a header expression's result holding a line break.
var errHeaderInjection = errors.New("holds a line break or NUL (refused: it would inject headers)")

// shaper evaluates the request block for each event. Nil when the block
// sets no expression: every request is the binding's, to the sink's url.
type shaper struct {
	url       cel.Program
	headers   []headerExpr // by name, for a stable order
	body      cel.Program
	ctype     string
	ceHeaders bool
}

type headerExpr struct {
	name string // canonical
	prog cel.Program
}

// shaped is one event's request: what the expressions gave.
type shaped struct {
	url    *url.URL // nil: the sink's
	header []string // name, value pairs
	body   []byte   // nil: the binding's body
	ctype  string
	ce     bool // ce-* headers with body
}

// set reports whether the block sets any expression.
func (r *RequestConfig) set() bool { return r.URL != "" || r.Body != "" || len(r.Headers) > 0 }

// validate compiles the expressions and checks the keys against each other
// and against the sink's mode and static headers.
func (r *RequestConfig) validate(mode string, static map[string]ferry.Secret) []error {
	_, errs := r.compile()
	bad := func(field, format string, args ...any) { errs = append(errs, ferry.Invalid(field, format, args...)) }
	if r.set() && mode == ModeBatch {
		bad("request", "is evaluated per event, but batch mode sends many events per request: use mode binary or structured")
	}
	if r.Body != "" && mode == ModeStructured {
		bad("request.body", "replaces the structured event as the body: use mode binary")
	}
	if r.Body == "" && r.ContentType != "" {
		bad("request.content_type", "is set but request.body is not")
	}
	if r.Body == "" && !r.CloudEventsHeaders {
		bad("request.cloudevents_headers", "can be false only with request.body (the ce-* headers carry the event's attributes otherwise)")
	}
	if r.ContentType != "" {
		if mt, _, err := mime.ParseMediaType(r.ContentType); err != nil || !strings.Contains(mt, "/") {
			bad("request.content_type", "is not a media type like application/json")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		field := "request.headers." + name
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !isToken(name):
			bad(field, "is not a valid header name")
		case reservedHeaders[canon] || strings.HasPrefix(canon, "Ce-"):
			bad(field, "is managed by the sink (CloudEvents HTTP binding, connection handling; set request.content_type for the body's type)")
		case hasHeader(static, canon):
			bad(field, "is also a configured header (headers.%s): set it in one place", name)
		}
	}
	return errs
}

func hasHeader(h map[string]ferry.Secret, canon string) bool {
	for k := range h {
		if http.CanonicalHeaderKey(k) == canon {
			return true
		}
	}
	return false
}

// compile compiles the block's expressions; a failed one is a field error
// with CEL's message. It returns nil when the block sets none.
func (r *RequestConfig) compile() (*shaper, []error) {
	if !r.set() {
		return nil, nil
	}
	var errs []error
	prog := func(field, expr string, want ...*cel.Type) cel.Program {
		if expr == "" {
			return nil
		}
		p, err := eventexpr.CompileAs(expr, want...)
		if err != nil {
			errs = append(errs, ferry.Invalid(field, "%v", err))
		}
		return p
	}
	sh := &shaper{ctype: r.ContentType, ceHeaders: r.CloudEventsHeaders}
	sh.url = prog("request.url", r.URL, cel.StringType)
	sh.body = prog("request.body", r.Body, cel.MapType(cel.StringType, cel.DynType), cel.ListType(cel.DynType),
		cel.StringType, cel.BytesType, cel.IntType, cel.UintType, cel.DoubleType, cel.BoolType)
	for _, name := range slices.Sorted(maps.Keys(r.Headers)) {
		if p := prog("request.headers."+name, r.Headers[name], cel.StringType); p != nil {
			sh.headers = append(sh.headers, headerExpr{name: http.CanonicalHeaderKey(name), prog: p})
		}
	}
	return sh, errs
}

// build evaluates the expressions for e. Every failure is permanent: the
// same event gives the same result on every attempt. A nil shaper builds
// nothing.
func (sh *shaper) build(e *event.Event) (*shaped, error) {
	if sh == nil {
		return nil, nil
	}
	act := eventexpr.Bind(e)
	out := &shaped{ce: sh.ceHeaders}
	fail := func(field string, err error) (*shaped, error) {
		return nil, ferry.Permanent(fmt.Errorf("event %s: %s: %w", e.ID(), field, err))
	}
	if sh.url != nil {
		u, err := evalURL(sh.url, act)
		if err != nil {
			return fail("request.url", err)
		}
		out.url = u
	}
	for _, h := range sh.headers {
		v, err := evalHeader(h.prog, act)
		if err != nil {
			return fail("request.headers."+h.name, err)
		}
		if v != "" {
			out.header = append(out.header, h.name, v)
		}
	}
	if sh.body != nil {
		body, ctype, err := evalBody(sh.body, act)
		if err != nil {
			return fail("request.body", err)
		}
		out.body, out.ctype = body, ctype
		if sh.ctype != "" {
			out.ctype = sh.ctype
		}
	}
	return out, nil
}

func evalString(p cel.Program, act *eventexpr.Activation) (string, error) {
	v, _, err := p.Eval(act)
	if err != nil {
		return "", err
	}
	s, ok := v.(types.String)
	if !ok {
		return "", fmt.Errorf("gave %s, want a string", kindOf(v))
	}
	return string(s), nil
}

// kindOf names a result's type for an error: "null", "a int", "a map".
func kindOf(v ref.Val) string {
	if v == types.NullValue {
		return "null"
	}
	return "a " + v.Type().TypeName()
}

func evalURL(p cel.Program, act *eventexpr.Activation) (*url.URL, error) {
	s, err := evalString(p, act)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("gave an invalid URL: %w", cleanURLError(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gave %q, not an absolute http:// or https:// URL", redactURL(u))
	}
	return u, nil
}

func evalHeader(p cel.Program, act *eventexpr.Activation) (string, error) {
	s, err := evalString(p, act)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", errHeaderInjection
	}
	if !httpguts.ValidHeaderFieldValue(s) {
		return "", errors.New("holds a control character HTTP does not allow in a header")
	}
	return s, nil
}

// evalBody evaluates the body and encodes it: JSON for maps, lists,
// numbers and booleans; strings and bytes as they are.
func evalBody(p cel.Program, act *eventexpr.Activation) ([]byte, string, error) {
	v, _, err := p.Eval(act)
	if err != nil {
		return nil, "", err
	}
	switch v := v.(type) {
	case types.String:
		return []byte(v), contentTypeText, nil
	case types.Bytes:
		return []byte(v), contentTypeBytes, nil
	case types.Null:
		return nil, "", errors.New("gave null, want a map, list, string or bytes")
	}
	b, err := transform.AppendJSON(nil, v)
	if err != nil {
		return nil, "", fmt.Errorf("encode as JSON: %w", err)
	}
	return b, contentTypeJSON, nil
}

// endpoint returns the request's URL: the one the expression gave, else
// the sink's.
func (sh *shaped) endpoint(def *url.URL) *url.URL {
	if sh == nil || sh.url == nil {
		return def
	}
	return sh.url
}

// fill writes e into req: the binding in mode, or the shaped body with or
// without the binding's ce-* headers; then the shaped URL and headers. The
// body bytes built here are the ones sent, on every attempt of the request.
func (sh *shaped) fill(req *http.Request, mode context.Context, e *event.Event) error {
	if sh == nil || sh.body == nil || sh.ce {
		if sh != nil && sh.body != nil {
			mode = binaryMode // the attributes as ce-* headers; the body is replaced below
		}
		if err := cehttp.WriteRequest(mode, binding.ToMessage(e), req); err != nil {
			return err
		}
		percentEncodeAttributes(req.Header)
	}
	if sh == nil {
		return nil
	}
	if sh.body != nil {
		req.Header["Content-Type"] = []string{sh.ctype}
		body := sh.body
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if sh.url != nil {
		req.URL, req.Host = sh.url, sh.url.Host
	}
	for i := 0; i < len(sh.header); i += 2 {
		req.Header[sh.header[i]] = []string{sh.header[i+1]}
	}
	return nil
}

// failedTarget is the URL a failed request went to, for its error: the one
// net/http names (request.url may have given each event its own), else
// the sink's.
func (s *Sink) failedTarget(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return redactURL(u)
		}
	}
	return s.target
}
