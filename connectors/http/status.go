package httpsink

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ferry-cdc/ferry"
)

const (
	// maxRetryAfter caps the delay an endpoint can ask for.
	maxRetryAfter = 10 * time.Minute
	// bodyExcerpt is how much of a rejection's body goes into its error.
	bodyExcerpt = 512
)

// StatusError is an answer other than 2xx. The errors Write reports for
// such answers wrap one; use errors.As to inspect it.
type StatusError struct {
	Method string
	URL    string // without user information or query
	Code   int
	Status string // for example "400 Bad Request"
	// Body is the start (at most 512 bytes) of the response body, on one
	// line, printable.
	Body string
	// Location is where a redirect pointed, without user information or
	// query.
	Location string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.Method, e.URL, e.Status)
	if e.Code >= 300 && e.Code < 400 {
		fmt.Fprintf(&b, ": redirect to %q not followed", e.Location)
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// permanentStatuses are the answers retrying the same request cannot fix:
// the request is malformed, refused for its content, or too large.
var permanentStatuses = map[int]bool{400: true, 404: true, 405: true, 409: true, 410: true,
	413: true, 415: true, 422: true}

// transientStatus reports whether an answer is worth retrying by default:
// 408, 425, 429 and 5xx; also 401, 403 and 407, which the operator fixes
// (credentials, permissions) while the events wait. Other 3xx and 4xx,
// like those in permanentStatuses, are permanent.
func transientStatus(code int) bool {
	switch {
	case permanentStatuses[code]:
		return false
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code == http.StatusUnauthorized,
		code == http.StatusForbidden, code == http.StatusProxyAuthRequired:
		return true
	}
	return false
}

// isTransient applies the sink's overrides (transient_statuses,
// permanent_statuses) to the default classification.
func (s *Sink) isTransient(code int) bool {
	switch {
	case s.transient[code]:
		return true
	case s.permanent[code]:
		return false
	}
	return transientStatus(code)
}

// classify turns a non-2xx answer into a transient, RetryAfter or permanent
// error, and reads what it needs of the body.
func (s *Sink) classify(resp *http.Response) error {
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode)
	}
	se := &StatusError{Method: s.method, URL: redactURL(resp.Request.URL), Code: resp.StatusCode, Status: status, Body: excerpt(resp.Body)}
	code := resp.StatusCode
	if code >= 300 && code < 400 {
		se.Location = redirectTarget(resp)
	}
	if !s.isTransient(code) {
		return ferry.Permanent(se)
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return ferry.RetryAfter(se, d)
		}
	}
	return se
}

// isTooLarge reports whether err is a 413 answer.
func isTooLarge(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusRequestEntityTooLarge
}

// excerpt returns the start of body as one printable line and drains a
// bounded rest so that the connection can be reused.
func excerpt(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, bodyExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, keepAliveDrain))
	s := strings.ToValidUTF8(string(b), "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// redirectTarget is the redirect's Location, resolved and redacted.
func redirectTarget(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return redactURL(loc)
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP date,
// as a delay from now, capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// cleanURLError drops the *url.Error wrapper, whose message holds the full
// URL (user information and query included); callers name the redacted URL.
func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
