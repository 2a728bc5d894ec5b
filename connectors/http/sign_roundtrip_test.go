package httpsink_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
	httpsink "github.com/ferry-cdc/ferry/connectors/http"
	"github.com/ferry-cdc/ferry/connectors/webhook"
	"github.com/ferry-cdc/ferry/internal/app"
	"github.com/ferry-cdc/ferry/internal/state"
)

// startWebhookSource opens a Ferry webhook source verifying with v and
// returns it with its URL.
func startWebhookSource(t *testing.T, v func(*webhook.Verify)) (*webhook.Source, string) {
	t.Helper()
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := webhook.DefaultConfig()
	cfg.Listen, cfg.Path = "127.0.0.1:0", "/hooks/erp"
	v(&cfg.Verify)
	src, err := webhook.New("erp", cfg, app.NewWebhookJournal(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src, "http://" + src.Addr() + cfg.Path
}

func whsec(t *testing.T) string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(k)
}

// TestSignedRequestsPassAFerryWebhookSource: a sink `sign:` block and a
// webhook source `verify:` block with the same keys agree, for each
// scheme: every event arrives, verified; a wrong secret is refused (401)
// and the sink dead-letters it (permanent).
func TestSignedRequestsPassAFerryWebhookSource(t *testing.T) {
	current, previous := whsec(t), whsec(t)
	type block struct {
		scheme, header, algorithm, encoding, prefix, tsHeader string
	}
	cases := []struct {
		name string
		b    block
		mode string
		// sinkSecrets sign; sourceSecret verifies.
		sinkSecrets  []string
		sourceSecret string
	}{
		{"standard-webhooks rotation", block{scheme: "standard-webhooks"}, httpsink.ModeBinary, []string{current, previous}, previous},
		{"hmac-sha256 hex prefix", block{scheme: "hmac-sha256", header: "X-Signature", encoding: "hex", prefix: "sha256="}, httpsink.ModeStructured, []string{"legacy-secret"}, "legacy-secret"},
		{"hmac sha512 base64 timestamp", block{scheme: "hmac", header: "X-Signature", algorithm: "sha512", encoding: "base64", tsHeader: "X-Timestamp"}, httpsink.ModeBinary, []string{"legacy-secret"}, "legacy-secret"},
		{"hmac-sha1", block{scheme: "hmac-sha1", header: "X-Hub-Signature", encoding: "hex", prefix: "sha1="}, httpsink.ModeBinary, []string{"legacy-secret"}, "legacy-secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, url := startWebhookSource(t, func(v *webhook.Verify) {
				v.Scheme, v.Secret, v.Header, v.Algorithm = c.b.scheme, ferry.Secret(c.sourceSecret), c.b.header, c.b.algorithm
				v.Encoding, v.Prefix, v.TimestampHeader = c.b.encoding, c.b.prefix, c.b.tsHeader
			})
			cfg := httpsink.DefaultConfig()
			cfg.URL, cfg.Mode = url, c.mode
			cfg.Sign = httpsink.SignConfig{Scheme: c.b.scheme, Secret: ferry.Secret(c.sinkSecrets[0]), Header: c.b.header,
				Algorithm: c.b.algorithm, Encoding: c.b.encoding, Prefix: c.b.prefix, TimestampHeader: c.b.tsHeader}
			for _, s := range c.sinkSecrets[1:] {
				cfg.Sign.Secrets = append(cfg.Sign.Secrets, ferry.Secret(s))
			}
			sink := openSink(t, cfg)
			events := conntest.Events(5, 5)
			if err := sink.Write(context.Background(), events); err != nil {
				t.Fatalf("the webhook source refused what the sink signed: %v", err)
			}
			got := 0
			for got < len(events) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				b, err := src.Read(ctx)
				cancel()
				if err != nil {
					t.Fatalf("read after %d of %d events: %v", got, len(events), err)
				}
				got += len(b.Changes)
			}
			if n := src.Stats().Unauthorized.Load(); n != 0 {
				t.Fatalf("%d requests refused", n)
			}

			wrong := *cfg
			wrong.Sign.Secret, wrong.Sign.Secrets = ferry.Secret(whsec(t)), nil
			if c.b.scheme != "standard-webhooks" {
				wrong.Sign.Secret = "another-secret"
			}
			err := openSink(t, &wrong).Write(context.Background(), conntest.Events(1, 1))
			var be *ferry.BatchError
			if !errors.As(err, &be) || !ferry.IsPermanent(be.Failed(0)) {
				t.Fatalf("wrong secret: %v, want a permanent failure", err)
			}
			var se *httpsink.StatusError
			if !errors.As(be.Failed(0), &se) || se.Code != 401 {
				t.Fatalf("wrong secret: %v, want the source's 401", be.Failed(0))
			}
		})
	}
}

func openSink(t *testing.T, cfg *httpsink.Config) *httpsink.Sink {
	t.Helper()
	s, err := httpsink.New("erp", cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}
