package httpsink

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// validateAuth checks sign and oauth2, and that no configured header is
// one they set.
func (c *Config) validateAuth() []error {
	g, errs := c.Sign.newSigner()
	errs = append(errs, c.OAuth2.validate()...)
	own := map[string]string{}
	if g != nil {
		for _, h := range g.headers() {
			own[h] = "sign"
		}
	}
	if c.OAuth2.enabled() {
		own["Authorization"] = "oauth2"
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		if by := own[http.CanonicalHeaderKey(name)]; by != "" {
			errs = append(errs, ferry.Invalid("headers."+name, "is set by %s on every request; remove it from headers", by))
		}
	}
	return errs
}

// setupAuth builds the signer and the OAuth2 token cache of a validated
// configuration.
func (s *Sink) setupAuth(cfg *Config, tlsCfg *tls.Config) error {
	g, errs := cfg.Sign.newSigner()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	s.signer = g
	if g != nil {
		// An endpoint that checks signatures answers 401 or 403 to one it
		// refuses, and would refuse the same signature again: dead-letter
		// with its answer, unless transient_statuses says to wait.
		for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
			if !s.transient[code] {
				s.permanent[code] = true
			}
		}
	}
	if cfg.OAuth2.enabled() {
		s.tokens = newTokenCache(&cfg.OAuth2, tlsCfg, cfg.Timeout)
	}
	return nil
}

// roundTrip sends req, whose message id (webhook-id) is id. Authorizing
// is the last step before sending: the OAuth2 token is set, then the final
// body and headers are signed with the current time. A 401 to a request
// that carried a token drops the token (the endpoint may have revoked it
// before its expiry) and sends the request once more with a new token,
// signed anew. ctx is the Write's (see guardBody).
func (s *Sink) roundTrip(ctx context.Context, req *http.Request, id string) (*http.Response, error) {
	if s.signer == nil && s.tokens == nil {
		return s.client.Do(guardBody(ctx, req))
	}
	body, err := bufferBody(req)
	if err != nil {
		return nil, ferry.Permanent(fmt.Errorf("read the request body to sign it: %w", err))
	}
	gen, err := s.authorize(req, id, body)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(guardBody(ctx, req))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || s.tokens == nil {
		return resp, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, keepAliveDrain))
	_ = resp.Body.Close()
	s.log.Debug("endpoint refused the oauth2 token (401); fetching a new one and sending again")
	s.tokens.refresh(gen)
	again := req.Clone(req.Context())
	setBody(again, body)
	if _, err := s.authorize(again, id, body); err != nil {
		return nil, err
	}
	return s.client.Do(guardBody(ctx, again))
}

// authorize sets the token and the signature of req, whose body is body,
// and returns the token's generation.
func (s *Sink) authorize(req *http.Request, id string, body []byte) (uint64, error) {
	var gen uint64
	if s.tokens != nil {
		tok, g, err := s.tokens.token()
		if err != nil {
			return 0, err
		}
		tok.SetAuthHeader(req)
		gen = g
	}
	if s.signer != nil {
		s.signer.sign(req.Header, id, body, s.signer.now())
	}
	return gen, nil
}

// sendFailed classifies a request roundTrip did not get an answer for.
func (s *Sink) sendFailed(ctx context.Context, first *event.Event, n int, err error) error {
	var te *TokenError
	switch {
	case ctx.Err() != nil:
		return s.requestFailed(ctx, first, n, err)
	case errors.As(err, &te):
		err = fmt.Errorf("%s %s not sent: %w", s.method, s.target, err)
		s.log.Debug("no oauth2 token", "events", n, "first_id", first.ID(), "error", err)
		return err
	case ferry.IsPermanent(err):
		return fmt.Errorf("%s %s not sent: %w", s.method, s.target, err)
	}
	err = s.requestFailed(ctx, first, n, err)
	if hint := s.tlsHint(err); hint != "" {
		err = fmt.Errorf("%w (%s)", err, hint)
	}
	return err
}

// tlsHint explains how a server requiring client certificates refuses a
// request. Go reports a received alert as a plain error ("remote error:
// tls: ..."), with no exported type to match, so its text is matched. In
// TLS 1.3 the handshake ends on the client's side before the server has
// checked the certificate, so the client may be writing the request when
// the server's alert and close arrive and see only a broken pipe, a reset
// or a closed connection: after the server asked for a certificate, those count too.
func (s *Sink) tlsHint(err error) string {
	msg := err.Error()
	alert := strings.Contains(msg, "remote error: tls:") && (strings.Contains(msg, "certificate required") ||
		strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority") ||
		strings.Contains(msg, "handshake failure"))
	closed := s.certAsked.Load() && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
	switch {
	case !alert && !closed:
		return ""
	case s.cfg.TLS.CertFile == "":
		return "the endpoint requires a client certificate: set tls.cert_file and tls.key_file"
	}
	return "the endpoint did not accept the client certificate in tls.cert_file: check that a CA it trusts issued it and that it has not expired"
}

// bufferBody reads req's body into memory and makes it readable again,
// as often as a resend needs; the signature covers exactly these bytes.
func bufferBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		setBody(req, nil)
		return nil, nil
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	setBody(req, body)
	return body, nil
}

// guardBody makes req's body check ctx whenever the transport reads it,
// which it does right before writing it to the connection: a body that
// finds ctx done ends the request there, none of it sent (at most the
// headers, which no endpoint takes for a delivery). It is the last check
// before the bytes leave, closer than any before handing req to the
// client: a fenced HA leader's ctx reports itself done by the clock (see
// ha.Fence.Hold), and a leader frozen after an earlier check resumes
// straight into the transport's write. ctx is the Write's own context,
// not req's: the request's deadline context sees only its parent's Done.
// A body other than the in-memory kinds makes the transport write the
// headers ahead of it, one more packet per request.
func guardBody(ctx context.Context, req *http.Request) *http.Request {
	if req.Body == nil || req.Body == http.NoBody {
		return req
	}
	req.Body = &guardedBody{ctx: ctx, ReadCloser: req.Body}
	if get := req.GetBody; get != nil {
		req.GetBody = func() (io.ReadCloser, error) {
			b, err := get()
			if err != nil || b == http.NoBody {
				return b, err
			}
			return &guardedBody{ctx: ctx, ReadCloser: b}, nil
		}
	}
	return req
}

// guardedBody is a request body that yields bytes only while ctx is not
// done. A read that yields none (the transport's probe past the end, after
// the body went out) passes: the request was sent whole by then.
type guardedBody struct {
	ctx context.Context
	io.ReadCloser
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if cerr := b.ctx.Err(); cerr != nil {
			return 0, cerr
		}
	}
	return n, err
}

func setBody(req *http.Request, body []byte) {
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// noteCertificateRequests returns a copy of tlsCfg (nil: Go's defaults)
// that answers a server's certificate request as Go would (the configured
// client certificate, or none) and records in asked that the server asked.
func noteCertificateRequests(tlsCfg *tls.Config, asked *atomic.Bool) *tls.Config {
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsCfg = tlsCfg.Clone()
	}
	certs := tlsCfg.Certificates
	tlsCfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked.Store(true)
		for i := range certs { // Go's own choice: the first the server accepts
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return &tls.Certificate{}, nil
	}
	return tlsCfg
}
