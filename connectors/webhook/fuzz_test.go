package webhook

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzParseBody: any body under any content type is refused with a status
// or becomes data that is valid JSON when it says it is; never a panic.
func FuzzParseBody(f *testing.F) {
	for _, s := range [][2]string{
		{"application/json", `{"a":1}`}, {"application/x-www-form-urlencoded", "a=1&a=2&b=%zz"},
		{"application/xml", `<a x="1"><b>t</b><b/></a>`}, {"text/xml", `<a><a><a>`}, {"text/plain", "hi"},
		{"application/cloudevents+json", `{"specversion":"1.0","id":"1","source":"/s","type":"t"}`},
		{"application/cloudevents-batch+json", `[null]`}, {"application/foo+json", `[`},
	} {
		f.Add(s[0], s[1])
	}
	src := &Source{cfg: DefaultConfig(), accepts: map[string]bool{"json": true, "form": true, "xml": true, "text": true, "cloudevents": true}}
	f.Fuzz(func(t *testing.T, contentType, raw string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(raw))
		r.Header.Set("Content-Type", contentType)
		b, herr := src.parseBody(r, []byte(raw))
		if herr != nil {
			if herr.status < 400 || herr.status > 499 {
				t.Fatalf("refusal with status %d", herr.status)
			}
			return
		}
		if b.contentType == jsonType && !json.Valid(b.data) {
			t.Fatalf("data claims JSON but is not: %q", b.data)
		}
	})
}

// FuzzSignatureHeaders: hostile signature headers are rejected, never a
// panic, for every scheme.
func FuzzSignatureHeaders(f *testing.F) {
	f.Add("t=1,v1=zz", "v1,AAAA v2,x", "sha256=00", "1700000000", "Basic !!", "body")
	f.Add(",,,", "v1", "", "-1", "Bearer ", "")
	schemes := []Verify{
		{Scheme: "stripe", Secret: "s", Tolerance: time.Hour},
		{Scheme: "standard-webhooks", Secret: "whsec_c2VjcmV0", Tolerance: time.Hour},
		{Scheme: "github", Secret: "s"}, {Scheme: "shopify", Secret: "s"},
		{Scheme: "hmac-sha512", Header: "X-Sig", Encoding: "base64", TimestampHeader: "X-Ts", Tolerance: time.Hour, Secret: "s"},
		{Scheme: "basic", Username: "u", Secret: "p"}, {Scheme: "bearer", Secret: "t"},
	}
	var verifiers []verifier
	for _, v := range schemes {
		fn, err := newVerifier(v)
		if err != nil {
			f.Fatal(err)
		}
		verifiers = append(verifiers, fn)
	}
	f.Fuzz(func(t *testing.T, stripeSig, stdSig, hubSig, ts, auth, body string) {
		h := http.Header{}
		h.Set("Stripe-Signature", stripeSig)
		h.Set("webhook-signature", stdSig)
		h.Set("webhook-id", "m")
		h.Set("webhook-timestamp", ts)
		h.Set("X-Hub-Signature-256", hubSig)
		h.Set("X-Shopify-Hmac-Sha256", hubSig)
		h.Set("X-Sig", hubSig)
		h.Set("X-Ts", ts)
		h.Set("Authorization", auth)
		for _, v := range verifiers {
			_ = v(h, []byte(body), time.Unix(1700000000, 0))
		}
	})
}
