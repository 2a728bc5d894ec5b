package httpsink

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// The signing schemes of the `sign.scheme` key; the names are those of
// the webhook source's `verify.scheme`, so one Ferry's sink and another's
// source agree on a block copied from one to the other.
const (
	SchemeNone             = "none"
	SchemeHMAC             = "hmac"
	SchemeStandardWebhooks = "standard-webhooks"
)

// The Standard Webhooks headers, written in the spec's lower case (HTTP
// names are case-insensitive; some legacy receivers are not).
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
)

// Bounds of a Standard Webhooks key, decoded: the spec asks for at least
// 24 random bytes and at most 64.
const (
	minStandardKey = 24
	maxStandardKey = 64
)

// SignConfig is the `sign` key: how each request proves it comes from
// Ferry. Every request is signed last, over the body bytes actually sent,
// and signed again with a fresh timestamp on every retry.
type SignConfig struct {
	// Scheme is none; standard-webhooks (webhook-id, webhook-timestamp and
	// webhook-signature headers, HMAC-SHA256 of "<id>.<timestamp>.<body>");
	// or hmac (a header holding prefix + the hex or base64 HMAC of the body),
	// where hmac-sha1, hmac-sha256 and hmac-sha512 name the algorithm.
	Scheme string `yaml:"scheme" ferry:"default=none,enum=none|hmac|hmac-sha1|hmac-sha256|hmac-sha512|standard-webhooks"`
	// Secret signs every request: for standard-webhooks whsec_ followed by
	// the base64 key (24 to 64 bytes), for hmac the raw secret.
	Secret ferry.Secret `yaml:"secret"`
	// Secrets also sign, during a rotation (standard-webhooks only): each
	// secret signs and every signature is sent, space-separated.
	Secrets []ferry.Secret `yaml:"secrets"`
	// Header is the hmac signature header, like X-Signature.
	Header string `yaml:"header"`
	// Algorithm is the hmac hash (sha256 when left out).
	Algorithm string `yaml:"algorithm" ferry:"enum=sha1|sha256|sha512"`
	// Encoding is how the hmac signature is written: hex or base64.
	Encoding string `yaml:"encoding" ferry:"default=hex,enum=hex|base64"`
	// Prefix is written before the hmac signature, like "sha256=".
	Prefix string `yaml:"prefix"`
	// TimestampHeader, for hmac, is a header that carries the unix time of
	// sending; the signed content is then "<timestamp>.<body>".
	TimestampHeader string `yaml:"timestamp_header"`
}

// signer signs requests; built once from a valid SignConfig.
type signer struct {
	standard bool
	keys     [][]byte // standard: every key; hmac: one secret
	hash     func() hash.Hash
	header   string
	prefix   string
	tsHeader string
	base64   bool
	now      func() time.Time // the clock of the timestamps; tests set it
}

// headers returns the canonical names of the headers the signer sets.
func (g *signer) headers() []string {
	if g.standard {
		return []string{http.CanonicalHeaderKey(headerWebhookID),
			http.CanonicalHeaderKey(headerWebhookTimestamp), http.CanonicalHeaderKey(headerWebhookSignature)}
	}
	out := []string{http.CanonicalHeaderKey(g.header)}
	if g.tsHeader != "" {
		out = append(out, http.CanonicalHeaderKey(g.tsHeader))
	}
	return out
}

// sign sets the signature headers of a request whose body is body and
// whose message id (webhook-id) is id, as sent at now.
func (g *signer) sign(h http.Header, id string, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	if g.standard {
		sigs := make([]string, len(g.keys))
		for i, k := range g.keys {
			m := hmac.New(sha256.New, k)
			_, _ = io.WriteString(m, id+"."+ts+".")
			m.Write(body)
			sigs[i] = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		}
		h[headerWebhookID] = []string{id}
		h[headerWebhookTimestamp] = []string{ts}
		h[headerWebhookSignature] = []string{strings.Join(sigs, " ")}
		return
	}
	m := hmac.New(g.hash, g.keys[0])
	if g.tsHeader != "" {
		h.Set(g.tsHeader, ts)
		_, _ = io.WriteString(m, ts+".")
	}
	m.Write(body)
	sum := m.Sum(nil)
	enc := hex.EncodeToString(sum)
	if g.base64 {
		enc = base64.StdEncoding.EncodeToString(sum)
	}
	h.Set(g.header, g.prefix+enc)
}

// webhookID is the webhook-id of an event: its id, percent-encoded as the
// CloudEvents HTTP binding writes ce-id (space, '"', '%' and every byte
// outside printable ASCII become %XX), and '.' too, which the Standard
// Webhooks spec forbids in message ids (the signed content is
// "<id>.<timestamp>.<body>"). The usual ids (GTIDs, UUIDs) are unchanged;
// a receiver decoding %XX gets the event id back.
func webhookID(id string) string {
	escape := func(c byte) bool { return needsEscape(c) || c == '.' }
	i := 0
	for i < len(id) && !escape(id[i]) {
		i++
	}
	if i == len(id) {
		return id
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(id) + 16)
	b.WriteString(id[:i])
	for ; i < len(id); i++ {
		if c := id[i]; escape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// batchID is the webhook-id of a batch request: "batch_" and 32 hex digits
// of the SHA-256 of its events' sources and ids, in order. A retry of the
// same events carries the same id, so the receiver can deduplicate it; a
// request carrying other events (a batch split after a 413, or retried
// with fewer events) is another message with another id. Empty when the
// sink does not sign with Standard Webhooks.
func (s *Sink) batchID(events []*event.Event, idx []int) string {
	if s.signer == nil || !s.signer.standard {
		return ""
	}
	h := sha256.New()
	for _, i := range idx {
		_, _ = io.WriteString(h, events[i].Source())
		h.Write([]byte{0})
		_, _ = io.WriteString(h, events[i].ID())
		h.Write([]byte{0})
	}
	return "batch_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// newSigner checks c and builds its signer; nil without a scheme. Errors
// name the key ("sign.secret") and never hold a secret.
func (c *SignConfig) newSigner() (*signer, []error) {
	switch c.Scheme {
	case SchemeStandardWebhooks, SchemeHMAC, "hmac-sha1", "hmac-sha256", "hmac-sha512":
	default:
		return nil, nil // none, or an unknown scheme, which the key's enum reports
	}
	if !c.Secret.IsSet() {
		return nil, []error{ferry.Invalid("sign.secret", "is required for scheme %s", c.Scheme)}
	}
	if c.Scheme == SchemeStandardWebhooks {
		return c.standardSigner()
	}
	return c.hmacSigner([]byte(c.Secret.Reveal()))
}

func (c *SignConfig) standardSigner() (*signer, []error) {
	var errs []error
	for _, k := range []struct{ field, value string }{{"header", c.Header}, {"algorithm", c.Algorithm},
		{"prefix", c.Prefix}, {"timestamp_header", c.TimestampHeader}} {
		if k.value != "" {
			errs = append(errs, ferry.Invalid("sign."+k.field, "applies to the hmac schemes, not standard-webhooks (its headers and algorithm are fixed by the spec)"))
		}
	}
	g := &signer{standard: true, now: time.Now}
	check := func(field string, s ferry.Secret) {
		k, err := standardKey(s.Reveal())
		if err != nil {
			errs = append(errs, ferry.Invalid(field, "%v", err))
			return
		}
		g.keys = append(g.keys, k)
	}
	check("sign.secret", c.Secret)
	for i, s := range c.Secrets {
		check(fmt.Sprintf("sign.secrets[%d]", i), s)
	}
	return g, errs
}

// standardKey decodes a whsec_ secret. Its errors never quote the secret.
func standardKey(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, fmt.Errorf("is not a Standard Webhooks secret: it must start with whsec_ followed by the base64 key")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if k, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("is not a Standard Webhooks secret: the part after whsec_ is not base64")
		}
	}
	if len(k) < minStandardKey || len(k) > maxStandardKey {
		return nil, fmt.Errorf("holds a %d-byte key; Standard Webhooks keys are %d to %d random bytes", len(k), minStandardKey, maxStandardKey)
	}
	return k, nil
}

func (c *SignConfig) hmacSigner(secret []byte) (*signer, []error) {
	var errs []error
	alg := c.Algorithm
	if fixed, ok := strings.CutPrefix(c.Scheme, "hmac-"); ok {
		if alg != "" && alg != fixed {
			errs = append(errs, ferry.Invalid("sign.algorithm", "is %s but scheme %s signs with %s", alg, c.Scheme, fixed))
		}
		alg = fixed
	}
	g := &signer{keys: [][]byte{secret}, header: c.Header, prefix: c.Prefix,
		tsHeader: c.TimestampHeader, base64: c.Encoding == "base64", now: time.Now}
	switch alg {
	case "sha1":
		g.hash = sha1.New
	case "sha256", "":
		g.hash = sha256.New
	case "sha512":
		g.hash = sha512.New
	}
	if len(c.Secrets) > 0 {
		errs = append(errs, ferry.Invalid("sign.secrets", "applies to standard-webhooks only: an hmac header carries one signature, so rotate by changing secret once the endpoint accepts the new one"))
	}
	if c.Header == "" {
		errs = append(errs, ferry.Invalid("sign.header", "names the signature header for scheme %s (e.g. X-Signature)", c.Scheme))
	}
	for _, h := range []struct{ field, name string }{{"sign.header", c.Header}, {"sign.timestamp_header", c.TimestampHeader}} {
		if h.name == "" {
			continue
		}
		if err := checkOwnHeader(h.name); err != nil {
			errs = append(errs, ferry.Invalid(h.field, "%v", err))
		}
	}
	if c.Header != "" && http.CanonicalHeaderKey(c.Header) == http.CanonicalHeaderKey(c.TimestampHeader) {
		errs = append(errs, ferry.Invalid("sign.timestamp_header", "must differ from sign.header"))
	}
	if strings.ContainsAny(c.Prefix, "\r\n\x00") {
		errs = append(errs, ferry.Invalid("sign.prefix", "must not contain line breaks or NUL"))
	}
	return g, errs
}

// checkOwnHeader checks the name of a header the sink sets itself.
func checkOwnHeader(name string) error {
	canon := http.CanonicalHeaderKey(name)
	switch {
	case !isToken(name):
		return fmt.Errorf("%q is not a valid header name", name)
	case reservedHeaders[canon] || strings.HasPrefix(canon, "Ce-") || canon == "Authorization":
		return fmt.Errorf("%s is managed by the sink and cannot carry the signature", canon)
	}
	return nil
}
