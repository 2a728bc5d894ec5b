package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ferry-cdc/ferry"
)

// errSignature is the only detail a failed check gives the caller: a 401
// with a short reason, nothing that helps forge the next attempt.
var errSignature = errors.New("invalid signature")

// verifier checks one request. body is the complete raw body.
type verifier func(h http.Header, body []byte, now time.Time) error

func newVerifier(v Verify) (verifier, error) {
	secrets := v.secrets()
	needSecret := func() error {
		if len(secrets) == 0 {
			return ferry.Invalid("secret", "is required for scheme %s", v.Scheme)
		}
		return nil
	}
	switch v.Scheme {
	case "", "none":
		return func(http.Header, []byte, time.Time) error { return nil }, nil
	case "hmac", "hmac-sha1", "hmac-sha256", "hmac-sha512":
		if err := needSecret(); err != nil {
			return nil, err
		}
		return newHMAC(v, secrets)
	case "github":
		v.Header, v.Algorithm, v.Encoding, v.Prefix, v.TimestampHeader = "X-Hub-Signature-256", "sha256", "hex", "sha256=", ""
		if err := needSecret(); err != nil {
			return nil, err
		}
		return newHMAC(v, secrets)
	case "shopify":
		v.Header, v.Algorithm, v.Encoding, v.Prefix, v.TimestampHeader = "X-Shopify-Hmac-Sha256", "sha256", "base64", "", ""
		if err := needSecret(); err != nil {
			return nil, err
		}
		return newHMAC(v, secrets)
	case "stripe":
		if err := needSecret(); err != nil {
			return nil, err
		}
		return stripe(secrets, v.Tolerance), nil
	case "standard-webhooks":
		if err := needSecret(); err != nil {
			return nil, err
		}
		keys, err := standardKeys(secrets)
		if err != nil {
			return nil, err
		}
		return standardWebhooks(keys, v.Tolerance), nil
	case "basic":
		if v.Username == "" || len(secrets) == 0 {
			return nil, ferry.Invalid("username", "basic needs username and secret (the password)")
		}
		return basic(v.Username, secrets), nil
	case "bearer":
		if err := needSecret(); err != nil {
			return nil, err
		}
		return bearer(secrets), nil
	case "api-key":
		if v.Header == "" {
			return nil, ferry.Invalid("header", "api-key needs the header that carries the key (x-api-key)")
		}
		if err := needSecret(); err != nil {
			return nil, err
		}
		return apiKey(v.Header, secrets), nil
	}
	return nil, ferry.Invalid("scheme", "unknown scheme %q: none, hmac, github, stripe, standard-webhooks, shopify, basic, bearer or api-key", v.Scheme)
}

func (v Verify) secrets() [][]byte {
	var out [][]byte
	for _, s := range append([]ferry.Secret{v.Secret}, v.Secrets...) {
		if s.IsSet() {
			out = append(out, []byte(s.Reveal()))
		}
	}
	return out
}

func hashFunc(algorithm string) (func() hash.Hash, bool) {
	switch algorithm {
	case "sha1":
		return sha1.New, true
	case "sha256", "":
		return sha256.New, true
	case "sha512":
		return sha512.New, true
	}
	return nil, false
}

// newHMAC: the signature header holds prefix + encode(HMAC(secret, payload)),
// payload being the body, or "<timestamp>.<body>" with a timestamp header
// (which must then be within the tolerance).
func newHMAC(v Verify, secrets [][]byte) (verifier, error) {
	if alg, ok := strings.CutPrefix(v.Scheme, "hmac-"); ok {
		v.Algorithm = alg
	}
	h, ok := hashFunc(v.Algorithm)
	if !ok {
		return nil, ferry.Invalid("algorithm", "must be sha1, sha256 or sha512, not %q", v.Algorithm)
	}
	if v.Header == "" {
		return nil, ferry.Invalid("header", "names the signature header (e.g. X-Signature)")
	}
	if v.Encoding != "hex" && v.Encoding != "base64" {
		return nil, ferry.Invalid("encoding", "must be hex or base64, not %q", v.Encoding)
	}
	return func(hd http.Header, body []byte, now time.Time) error {
		sig, ok := strings.CutPrefix(strings.TrimSpace(hd.Get(v.Header)), v.Prefix)
		if !ok || sig == "" {
			return errors.New("missing signature header " + v.Header)
		}
		payload := body
		if v.TimestampHeader != "" {
			ts := hd.Get(v.TimestampHeader)
			if err := checkTimestamp(ts, v.Tolerance, now); err != nil {
				return err
			}
			payload = append([]byte(ts+"."), body...)
		}
		got, err := decodeSig(sig, v.Encoding)
		if err != nil {
			return errSignature
		}
		return anyMAC(h, secrets, payload, got)
	}, nil
}

func decodeSig(s, encoding string) ([]byte, error) {
	if encoding == "base64" {
		return base64.StdEncoding.DecodeString(s)
	}
	return hex.DecodeString(s)
}

// anyMAC accepts when the signature matches the MAC under any secret
// (secret rotation), comparing in constant time.
func anyMAC(h func() hash.Hash, secrets [][]byte, payload, sig []byte) error {
	ok := 0
	for _, s := range secrets {
		m := hmac.New(h, s)
		m.Write(payload)
		ok |= subtle.ConstantTimeCompare(m.Sum(nil), sig)
	}
	if ok == 1 {
		return nil
	}
	return errSignature
}

func checkTimestamp(ts string, tolerance time.Duration, now time.Time) error {
	secs, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return errors.New("missing or invalid signature timestamp")
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp outside the tolerance")
	}
	return nil
}

// stripe: Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]; the MAC is of
// "<t>.<body>" with HMAC-SHA256.
func stripe(secrets [][]byte, tolerance time.Duration) verifier {
	return func(h http.Header, body []byte, now time.Time) error {
		var ts string
		var sigs [][]byte
		for _, part := range strings.Split(h.Get("Stripe-Signature"), ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "t":
				ts = val
			case "v1":
				if b, err := hex.DecodeString(val); err == nil {
					sigs = append(sigs, b)
				}
			}
		}
		if ts == "" || len(sigs) == 0 {
			return errors.New("missing or malformed Stripe-Signature")
		}
		if err := checkTimestamp(ts, tolerance, now); err != nil {
			return err
		}
		return anySignature(sha256.New, secrets, append([]byte(ts+"."), body...), sigs)
	}
}

func anySignature(h func() hash.Hash, secrets [][]byte, payload []byte, sigs [][]byte) error {
	for _, sig := range sigs {
		if anyMAC(h, secrets, payload, sig) == nil {
			return nil
		}
	}
	return errSignature
}

// standardKeys decodes Standard Webhooks secrets: "whsec_" + base64 key.
func standardKeys(secrets [][]byte) ([][]byte, error) {
	var keys [][]byte
	for _, s := range secrets {
		k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(string(s), "whsec_"))
		if err != nil {
			return nil, ferry.Invalid("secret", "a Standard Webhooks secret is whsec_ followed by base64")
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// standardWebhooks: webhook-signature holds space-separated "v1,<base64>"
// signatures of "<webhook-id>.<webhook-timestamp>.<body>" (HMAC-SHA256).
func standardWebhooks(keys [][]byte, tolerance time.Duration) verifier {
	return func(h http.Header, body []byte, now time.Time) error {
		id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
		if id == "" {
			return errors.New("missing webhook-id")
		}
		if err := checkTimestamp(ts, tolerance, now); err != nil {
			return err
		}
		var sigs [][]byte
		for _, part := range strings.Fields(h.Get("webhook-signature")) {
			if v, sig, ok := strings.Cut(part, ","); ok && v == "v1" {
				if b, err := base64.StdEncoding.DecodeString(sig); err == nil {
					sigs = append(sigs, b)
				}
			}
		}
		if len(sigs) == 0 {
			return errors.New("missing webhook-signature")
		}
		return anySignature(sha256.New, keys, []byte(id+"."+ts+"."+string(body)), sigs)
	}
}

func basic(user string, passwords [][]byte) verifier {
	return func(h http.Header, _ []byte, _ time.Time) error {
		u, p, ok := (&http.Request{Header: h}).BasicAuth()
		if !ok {
			return errors.New("missing basic credentials")
		}
		match := subtle.ConstantTimeCompare([]byte(u), []byte(user))
		pass := 0
		for _, want := range passwords {
			pass |= subtle.ConstantTimeCompare([]byte(p), want)
		}
		if match&pass == 1 {
			return nil
		}
		return errors.New("invalid credentials")
	}
}

func bearer(tokens [][]byte) verifier {
	return func(h http.Header, _ []byte, _ time.Time) error {
		tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
		if !ok {
			return errors.New("missing bearer token")
		}
		return oneOf([]byte(tok), tokens, "invalid token")
	}
}

// apiKey checks a key sent as the whole value of a header, as EventBridge
// API destinations with an API_KEY connection and many legacy callers do.
func apiKey(header string, keys [][]byte) verifier {
	return func(h http.Header, _ []byte, _ time.Time) error {
		got := h.Values(header)
		if len(got) != 1 {
			return fmt.Errorf("missing %s", header)
		}
		return oneOf([]byte(got[0]), keys, "invalid key")
	}
}

// oneOf compares got with every secret in constant time (no early exit
// that would tell which one, or how much, matched).
func oneOf(got []byte, secrets [][]byte, fail string) error {
	match := 0
	for _, want := range secrets {
		match |= subtle.ConstantTimeCompare(got, want)
	}
	if match == 1 {
		return nil
	}
	return errors.New(fail)
}
