package httpsink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ferry-cdc/ferry"
)

// OAuth2Config is the `oauth2` key: the sink gets an access token with
// the client credentials grant and sends it as `Authorization: Bearer` on
// every request.
type OAuth2Config struct {
	// TokenURL is the token endpoint; setting it turns OAuth2 on. It is
	// reached through the sink's tls settings.
	TokenURL string `yaml:"token_url" ferry:"example=https://auth.internal/oauth/token"`
	// ClientID identifies Ferry to the token endpoint.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates ClientID; never logged.
	ClientSecret ferry.Secret `yaml:"client_secret"`
	// Scopes are requested with every token.
	Scopes []string `yaml:"scopes"`
	// EndpointParams are sent to the token endpoint besides the grant's
	// own parameters, like audience or resource.
	EndpointParams map[string]string `yaml:"endpoint_params"`
	// AuthStyle is how the client credentials are sent: header (HTTP
	// Basic), params (form fields) or auto (header, then params if refused).
	AuthStyle string `yaml:"auth_style" ferry:"default=auto,enum=auto|header|params"`
}

// enabled reports whether any key of the block is set.
func (c *OAuth2Config) enabled() bool {
	return c.TokenURL != "" || c.ClientID != "" || c.ClientSecret.IsSet() || len(c.Scopes) > 0 || len(c.EndpointParams) > 0
}

// grantParams are the parameters the grant sets itself.
var grantParams = map[string]bool{"grant_type": true, "client_id": true, "client_secret": true, "scope": true}

// validate checks the block; errors never hold the secret.
func (c *OAuth2Config) validate() []error {
	if !c.enabled() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.TokenURL); c.TokenURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, ferry.Invalid("oauth2.token_url", "must be the absolute http:// or https:// URL of the token endpoint"))
	}
	if c.ClientID == "" {
		errs = append(errs, ferry.Invalid("oauth2.client_id", "is required with oauth2"))
	}
	if !c.ClientSecret.IsSet() {
		errs = append(errs, ferry.Invalid("oauth2.client_secret", "is required with oauth2"))
	}
	for _, k := range slices.Sorted(maps.Keys(c.EndpointParams)) {
		if grantParams[k] {
			errs = append(errs, ferry.Invalid("oauth2.endpoint_params."+k, "is set by the client credentials grant (client_id, client_secret, scopes)"))
		}
	}
	return errs
}

// TokenError is a failure to get an OAuth2 access token: the request was
// not sent. The sink reports it as transient, so the pipeline retries it:
// a token endpoint that is down recovers, and one that refuses the client
// (400, 401, 403) is fixed in its configuration or Ferry's while the
// events wait, rather than dead-lettering every event meanwhile.
type TokenError struct {
	URL    string // the token endpoint, without user information or query
	Code   int    // its HTTP status; 0 when it did not answer
	Status string
	// OAuthCode and Description are the endpoint's RFC 6749 error and
	// error_description, when it sent them.
	OAuthCode, Description string
	Err                    error // why there was no answer, or no token in it
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauth2 token endpoint %s", e.URL)
	switch {
	case e.Code == http.StatusBadRequest || e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden:
		fmt.Fprintf(&b, " refused the client: %s", e.Status)
	case e.Code != 0:
		fmt.Fprintf(&b, ": %s", e.Status)
	default:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.OAuthCode != "" {
		fmt.Fprintf(&b, " (%s", e.OAuthCode)
		if e.Description != "" {
			fmt.Fprintf(&b, ": %s", e.Description)
		}
		b.WriteByte(')')
	}
	if e.Code >= 400 && e.Code < 500 && e.Code != http.StatusTooManyRequests {
		b.WriteString("; check oauth2.client_id, oauth2.client_secret, oauth2.scopes and oauth2.endpoint_params")
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.Err }

// tokenCache hands out the access token the library's TokenSource caches
// until shortly before it expires. refresh drops it, for an endpoint that
// refused it before its expiry (revoked, or rotated keys).
type tokenCache struct {
	cfg     *clientcredentials.Config
	ctx     context.Context // carries the token client (oauth2.HTTPClient)
	client  *http.Client
	target  string        // TokenURL redacted
	timeout time.Duration // of each token request
	mu      sync.Mutex
	src     oauth2.TokenSource
	gen     uint64 // counts refreshes, so that concurrent 401s refresh once
}

// newTokenCache prepares the token source; it fetches nothing yet. The
// token endpoint is reached with the sink's TLS settings and timeout,
// through the environment's proxy.
func newTokenCache(c *OAuth2Config, tlsCfg *tls.Config, timeout time.Duration) *tokenCache {
	params := url.Values{}
	for k, v := range c.EndpointParams {
		params.Set(k, v)
	}
	style := oauth2.AuthStyleAutoDetect
	switch c.AuthStyle {
	case "header":
		style = oauth2.AuthStyleInHeader
	case "params":
		style = oauth2.AuthStyleInParams
	}
	cc := &clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(),
		TokenURL: c.TokenURL, Scopes: c.Scopes, EndpointParams: params, AuthStyle: style}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	client := &http.Client{Transport: transport, Timeout: timeout}
	target := c.TokenURL
	if u, err := url.Parse(c.TokenURL); err == nil {
		target = redactURL(u)
	}
	t := &tokenCache{cfg: cc, ctx: context.WithValue(context.Background(), oauth2.HTTPClient, client),
		client: client, target: target, timeout: timeout}
	t.src = cc.TokenSource(t.ctx)
	return t
}

// token returns the current token and the generation it belongs to.
func (t *tokenCache) token() (*oauth2.Token, uint64, error) {
	t.mu.Lock()
	src, gen := t.src, t.gen
	t.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		return nil, gen, t.explain(err)
	}
	return tok, gen, nil
}

// refresh makes the next token call fetch a new token, unless another
// lane already did since generation gen.
func (t *tokenCache) refresh(gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gen == gen {
		t.src = t.cfg.TokenSource(t.ctx)
		t.gen++
	}
}

// close closes the token client's idle connections.
func (t *tokenCache) close() { t.client.CloseIdleConnections() }

// maxDescription bounds the token endpoint's error_description in errors.
const maxDescription = 200

// explain turns the library's error into a TokenError: the status and the
// RFC 6749 error, never the response body nor the request (which carry
// the credentials in some auth styles).
func (t *tokenCache) explain(err error) error {
	te := &TokenError{URL: t.target}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil:
		te.Code, te.Status = re.Response.StatusCode, re.Response.Status
		te.OAuthCode = excerpt(strings.NewReader(re.ErrorCode))
		te.Description = excerpt(strings.NewReader(re.ErrorDescription))
		if len(te.Description) > maxDescription {
			te.Description = te.Description[:maxDescription] + "..."
		}
	case isTimeout(err):
		te.Err = fmt.Errorf("no answer within the %v timeout", t.timeout)
	default:
		te.Err = cleanURLError(err)
	}
	return te
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
