package webhook

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
)

// Vectors: GitHub's and Standard Webhooks' are from their documentation;
// the others were computed with openssl (an independent implementation):
//
//	echo -n '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret
func TestVerifiers(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("crm:s3cret"))
	cases := []struct {
		name   string
		verify Verify
		header http.Header
		body   string
		now    time.Time
		ok     bool
	}{
		{"github documented vector", Verify{Scheme: "github", Secret: "It's a Secret to Everybody"},
			hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), "Hello, World!", ts, true},
		{"github tampered body", Verify{Scheme: "github", Secret: "It's a Secret to Everybody"},
			hdr("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"), "Hello, World?", ts, false},
		{"github missing header", Verify{Scheme: "github", Secret: "x"}, hdr(), "b", ts, false},
		{"standard webhooks documented vector", Verify{Scheme: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Tolerance: 5 * time.Minute},
			hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330",
				"webhook-signature", "v1,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			`{"test": 2432232314}`, time.Unix(1614265330+10, 0), true},
		{"standard webhooks rotated secret", Verify{Scheme: "standard-webhooks", Secret: "whsec_b2xkb2xk",
			Secrets: []ferry.Secret{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, Tolerance: 5 * time.Minute},
			hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330", "webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			`{"test": 2432232314}`, time.Unix(1614265330, 0), true},
		{"standard webhooks replay outside tolerance", Verify{Scheme: "standard-webhooks", Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Tolerance: 5 * time.Minute},
			hdr("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp", "1614265330", "webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
			`{"test": 2432232314}`, time.Unix(1614265330+3600, 0), false},
		{"stripe", Verify{Scheme: "stripe", Secret: "whsec_test_secret", Tolerance: 5 * time.Minute},
			hdr("Stripe-Signature", "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a,v0=abc"), `{"id":"evt_1"}`, ts, true},
		{"stripe old timestamp", Verify{Scheme: "stripe", Secret: "whsec_test_secret", Tolerance: 5 * time.Minute},
			hdr("Stripe-Signature", "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"), `{"id":"evt_1"}`, ts.Add(time.Hour), false},
		{"stripe wrong secret", Verify{Scheme: "stripe", Secret: "other", Tolerance: 5 * time.Minute},
			hdr("Stripe-Signature", "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"), `{"id":"evt_1"}`, ts, false},
		{"shopify", Verify{Scheme: "shopify", Secret: "hush"}, hdr("X-Shopify-Hmac-Sha256", "mD+EOWlUivlg/MgRt6x8FEO/vRgCAanwed+6s2hvL7A="), `{"order":1}`, ts, true},
		{"shopify bad", Verify{Scheme: "shopify", Secret: "hush"}, hdr("X-Shopify-Hmac-Sha256", "AAAA"), `{"order":1}`, ts, false},
		{"hmac sha1 base64", Verify{Scheme: "hmac", Algorithm: "sha1", Encoding: "base64", Header: "X-Sig", Secret: "k1"},
			hdr("X-Sig", "0gWSS5hEbxc/Vbz13S8lwZbR70U="), "payload", ts, true},
		{"hmac-sha512 with prefix and timestamp", Verify{Scheme: "hmac-sha512", Encoding: "hex", Header: "X-Sig", Prefix: "sha512=",
			TimestampHeader: "X-Ts", Tolerance: time.Minute, Secret: "k2"},
			hdr("X-Sig", "sha512=38d80030cb8e55334c42903ada5eeefd8d29bbed0c129053066eb1655087109965529d9beb87dd09821fd3f7778ff34d4a5128bb1f9c3cdead06672d3bcd6ae4", "X-Ts", "1700000000"),
			"payload", ts, true},
		{"hmac missing timestamp", Verify{Scheme: "hmac-sha512", Encoding: "hex", Header: "X-Sig", TimestampHeader: "X-Ts", Tolerance: time.Minute, Secret: "k2"},
			hdr("X-Sig", "38d8"), "payload", ts, false},
		{"basic", Verify{Scheme: "basic", Username: "crm", Secret: "s3cret"}, hdr("Authorization", basicAuth), "", ts, true},
		{"basic wrong", Verify{Scheme: "basic", Username: "crm", Secret: "other"}, hdr("Authorization", basicAuth), "", ts, false},
		{"bearer rotation", Verify{Scheme: "bearer", Secret: "new", Secrets: []ferry.Secret{"old"}}, hdr("Authorization", "Bearer old"), "", ts, true},
		{"bearer wrong", Verify{Scheme: "bearer", Secret: "new"}, hdr("Authorization", "Bearer nope"), "", ts, false},
		{"api-key", Verify{Scheme: "api-key", Header: "x-api-key", Secret: "k-new", Secrets: []ferry.Secret{"k-old"}}, hdr("X-Api-Key", "k-old"), "", ts, true},
		{"api-key wrong", Verify{Scheme: "api-key", Header: "x-api-key", Secret: "k-new"}, hdr("X-Api-Key", "k-ne"), "", ts, false},
		{"api-key missing", Verify{Scheme: "api-key", Header: "x-api-key", Secret: "k-new"}, hdr("Authorization", "k-new"), "", ts, false},
		{"none", Verify{Scheme: "none"}, hdr(), "", ts, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.verify.Encoding == "" {
				c.verify.Encoding = "hex"
			}
			v, err := newVerifier(c.verify)
			if err != nil {
				t.Fatal(err)
			}
			if err := v(c.header, []byte(c.body), c.now); (err == nil) != c.ok {
				t.Fatalf("verify = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestVerifyConfigErrors(t *testing.T) {
	for _, v := range []Verify{{Scheme: "hmac"}, {Scheme: "hmac", Secret: "x", Header: "X", Algorithm: "md5", Encoding: "hex"},
		{Scheme: "basic", Secret: "p"}, {Scheme: "standard-webhooks", Secret: "whsec_***"}, {Scheme: "rot13"}} {
		if _, err := newVerifier(v); err == nil {
			t.Errorf("newVerifier(%+v) accepted", v)
		}
	}
}
