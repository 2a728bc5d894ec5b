package httpsink

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/testkit/nodece"
	"github.com/ferry-cdc/ferry/internal/testkit/receiver"
)

// TestShapedBodyIsWhatIsSigned: a body from request.body, sent to the URL
// request.url gives, is signed as sent: the official Standard Webhooks
// library accepts every attempt, and a retry sends the same bytes.
func TestShapedBodyIsWhatIsSigned(t *testing.T) {
	nodece.Require(t)
	secret := newWhsec(t, 32)
	r := receiver.New()
	u, captured := capture(t, r)
	s, _ := newSink(t, "http://unused.invalid/", func(c *Config) {
		c.Concurrency = 1
		c.Request = RequestConfig{URL: `"` + u + `/customers/" + event.subject`, Headers: map[string]string{"X-Customer": "event.subject"},
			Body: `{"customerId": data.id, "name": data.name, "op": event.type}`, CloudEventsHeaders: true}
		c.Sign = SignConfig{Scheme: SchemeStandardWebhooks, Secret: ferry.Secret(secret)}
	})
	events := []*event.Event{crmEvent("e-1", "c-1", `{"id":1,"name":"Zoë"}`), crmEvent("e-2", "c-2", `{"id":2,"name":"Ada \"A\""}`)}
	r.FailNext(1, 503, "")
	if err := s.Write(context.Background(), events); err == nil {
		t.Fatal("the 503 was not reported")
	}
	if err := s.Write(context.Background(), events[:1]); err != nil {
		t.Fatal(err)
	}
	reqs := captured()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 (e-1 refused, e-2, e-1 again)", len(reqs))
	}
	expectAccepted(t, secret, "shaped bodies", reqs)
	if string(reqs[0].Body) != string(reqs[2].Body) || string(reqs[0].Body) != `{"customerId":1,"name":"Zoë","op":"com.example.customer.updated"}` {
		t.Errorf("attempts sent %s then %s", reqs[0].Body, reqs[2].Body)
	}
}
