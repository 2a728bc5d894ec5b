package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// record is a request as the journal keeps it: everything the event and
// rules need, fixed before the request is acknowledged (the id included).
type record struct {
	ID          string            `json:"id"`
	Received    int64             `json:"t"` // unix nanoseconds
	Method      string            `json:"m"`
	Path        string            `json:"p"`
	Remote      string            `json:"r"`
	Header      http.Header       `json:"h,omitempty"`
	Query       string            `json:"q,omitempty"`
	ContentType string            `json:"ct,omitempty"`
	Data        []byte            `json:"d,omitempty"`
	Event       json.RawMessage   `json:"e,omitempty"` // a CloudEvent passed through
	Extensions  map[string]string `json:"x,omitempty"`
}

// credentialHeaders never reach the journal, rules or dead letters, and
// no mapping (extensions, id_header) may name them.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// signatureHeaders are the headers of v's scheme that carry the request's
// signature: kept from the journal, rules and mappings like credentials
// (a signature proves the request, and is no business of the event).
func signatureHeaders(v Verify) []string {
	switch v.Scheme {
	case "hmac", "hmac-sha1", "hmac-sha256", "hmac-sha512", "api-key":
		if v.Header != "" {
			return []string{v.Header}
		}
	case "github":
		return []string{"X-Hub-Signature-256", "X-Hub-Signature"}
	case "shopify":
		return []string{"X-Shopify-Hmac-Sha256"}
	case "stripe":
		return []string{"Stripe-Signature"}
	case "standard-webhooks":
		return []string{"Webhook-Signature"}
	}
	return nil
}

// SecretHeaders are the credential and signature headers of c's
// requests: removed before a request is journaled, never mapped.
func (c *Config) SecretHeaders() []string {
	return append(signatureHeaders(c.Verify), credentialHeaders...)
}

// secretHeader returns the secret header name equals, or "".
func (c *Config) secretHeader(name string) string {
	for _, h := range c.SecretHeaders() {
		if strings.EqualFold(strings.TrimSpace(name), h) {
			return h
		}
	}
	return ""
}

func (rec *record) change(source string) (ferry.Change, error) {
	req := &ferry.Request{Method: rec.Method, Path: rec.Path, RemoteAddr: rec.Remote, Header: rec.Header,
		ContentType: rec.ContentType, Data: rec.Data, Extensions: rec.Extensions}
	if rec.Query != "" {
		req.Query, _ = url.ParseQuery(rec.Query)
	}
	if len(rec.Event) > 0 {
		var e event.Event
		if err := json.Unmarshal(rec.Event, &e); err != nil {
			return ferry.Change{}, fmt.Errorf("decode journaled CloudEvent %s: %w", rec.ID, err)
		}
		req.Event = &e
		if len(req.Data) == 0 {
			req.Data, req.ContentType = e.Data(), e.DataContentType()
		}
	}
	return ferry.Change{ID: rec.ID, Op: ferry.OpRequest, Source: source, Time: time.Unix(0, rec.Received).UTC(), Request: req}, nil
}
