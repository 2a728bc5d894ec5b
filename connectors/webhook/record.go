package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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

// credentialHeaders never reach the journal, rules or dead letters.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

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
