package httpsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ferry-cdc/ferry"
)

const (
	contentTypeBatch = "application/cloudevents-batch+json"
	maxRetryAfter    = 10 * time.Minute
	bodyExcerpt      = 512
)

// Sink posts events to one URL. Write may be called again only after the
// previous Write returned (the pipeline's contract); inside a Write, up to
// Concurrency requests run in parallel, each lane carrying the events of
// the partition keys hashed to it in order.
type Sink struct {
	name    string
	cfg     *Config
	target  string // URL for logs, without credentials
	client  *http.Client
	headers http.Header
	log     *slog.Logger
	closed  atomic.Bool
}

var _ ferry.Sink = (*Sink)(nil)

// New builds the sink; it does not contact the endpoint.
func New(name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	tlsCfg, err := cfg.TLS.build()
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(cfg.URL)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	s := &Sink{
		name:   name,
		cfg:    cfg,
		target: u.Redacted(),
		client: &http.Client{
			Transport: transport,
			// Redirects are not followed: re-sending an event elsewhere is a
			// decision for the operator, not the sink.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		headers: http.Header{},
		log:     log,
	}
	for k, v := range cfg.Headers {
		s.headers.Set(k, v.Reveal())
	}
	return s, nil
}

// Open does nothing: an unreachable endpoint is a Write failure the
// pipeline retries, not a reason to refuse to start.
func (s *Sink) Open(context.Context) error { return nil }

// Close releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	s.client.CloseIdleConnections()
	return nil
}

// Write delivers events; see ferry.Sink for the result contract.
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("http sink %s: %w", s.name, ferry.ErrClosed)
	}
	if len(events) == 0 {
		return nil
	}
	lanes := s.partition(events)
	failed := make([]error, len(events))
	var wg sync.WaitGroup
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Go(func() { s.sendLane(ctx, events, lane, failed) })
	}
	wg.Wait()
	be := ferry.NewBatchError()
	for i, err := range failed {
		if err != nil {
			be.Fail(i, err)
		}
	}
	if be.Len() == 0 {
		return nil
	}
	return be
}

// partition assigns event indexes to lanes by partition key, keeping batch
// order inside each lane.
func (s *Sink) partition(events []*event.Event) [][]int {
	n := min(s.cfg.Concurrency, len(events))
	lanes := make([][]int, n)
	for i, e := range events {
		h := fnv.New32a()
		_, _ = h.Write([]byte(orderingKey(e)))
		l := int(h.Sum32() % uint32(n))
		lanes[l] = append(lanes[l], i)
	}
	return lanes
}

// orderingKey is the partitionkey extension, else the subject, else the id.
func orderingKey(e *event.Event) string {
	if v, ok := e.Extensions()["partitionkey"]; ok {
		if s, ok := v.(string); ok && s != "" {
			return s
		}
	}
	if sub := e.Subject(); sub != "" {
		return sub
	}
	return e.ID()
}

// sendLane sends a lane's events in order; at the first failure the rest of
// the lane is failed without being sent, so no event overtakes an earlier
// one with the same key.
func (s *Sink) sendLane(ctx context.Context, events []*event.Event, lane []int, failed []error) {
	for start := 0; start < len(lane); {
		n := 1
		var err error
		if s.cfg.Mode == "batch" {
			n, err = s.sendBatch(ctx, events, lane[start:])
		} else {
			err = s.sendOne(ctx, events[lane[start]])
		}
		if err != nil {
			for _, i := range lane[start : start+n] {
				failed[i] = err
			}
			skipped := fmt.Errorf("not sent: an earlier event with the same partition key failed: %w", err)
			if ferry.IsPermanent(err) {
				skipped = errors.New("not sent: an earlier event with the same partition key was rejected")
			}
			for _, i := range lane[start+n:] {
				failed[i] = skipped
			}
			return
		}
		start += n
	}
}

func (s *Sink) sendOne(ctx context.Context, e *event.Event) error {
	return s.do(ctx, func(req *http.Request) error {
		wctx := ctx
		if s.cfg.Mode == "structured" {
			wctx = binding.WithForceStructured(ctx)
		}
		return cehttp.WriteRequest(wctx, binding.ToMessage(e), req)
	}, 1)
}

// sendBatch sends as many of the lane's leading events as fit the batch
// limits (at least one) and returns how many it took.
func (s *Sink) sendBatch(ctx context.Context, events []*event.Event, lane []int) (int, error) {
	var body bytes.Buffer
	body.WriteByte('[')
	n := 0
	for _, i := range lane {
		b, err := json.Marshal(events[i])
		if err != nil {
			if n == 0 {
				return 1, ferry.Permanent(fmt.Errorf("encode event %s: %w", events[i].ID(), err))
			}
			break
		}
		if n > 0 && (n == s.cfg.BatchMaxEvents || body.Len()+len(b)+2 > s.cfg.BatchMaxBytes) {
			break
		}
		if n > 0 {
			body.WriteByte(',')
		}
		body.Write(b)
		n++
	}
	body.WriteByte(']')
	err := s.do(ctx, func(req *http.Request) error {
		req.Header.Set("Content-Type", contentTypeBatch)
		req.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
		req.ContentLength = int64(body.Len())
		return nil
	}, n)
	return n, err
}

// do performs one request built by fill and classifies the outcome.
func (s *Sink) do(ctx context.Context, fill func(*http.Request) error, events int) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, s.cfg.Method, s.cfg.URL, nil)
	if err != nil {
		return ferry.Permanent(fmt.Errorf("build request: %w", err))
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	if err := fill(req); err != nil {
		return ferry.Permanent(fmt.Errorf("encode request: %w", err))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", s.cfg.Method, s.target, ctx.Err())
		}
		s.log.Warn("request failed", "url", s.target, "events", events, "error", cleanURLError(err))
		return fmt.Errorf("%s %s: %w", s.cfg.Method, s.target, cleanURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
		return nil
	}
	err = s.classify(resp)
	s.log.Warn("request rejected", "url", s.target, "status", resp.StatusCode, "events", events, "error", err)
	return err
}

// classify maps a non-2xx response to a transient or permanent error.
func (s *Sink) classify(resp *http.Response) error {
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	msg := fmt.Sprintf("%s %s: %s", s.cfg.Method, s.target, resp.Status)
	if b := strings.TrimSpace(string(excerpt)); b != "" {
		msg += ": " + b
	}
	err := errors.New(msg)
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return ferry.RetryAfter(err, d)
		}
		return err
	case code >= 500 || code == http.StatusRequestTimeout:
		return err
	case code >= 300 && code < 400:
		return ferry.Permanent(fmt.Errorf("%s (redirect to %q not followed)", msg, resp.Header.Get("Location")))
	default:
		return ferry.Permanent(err)
	}
}

// retryAfter parses delta-seconds or an HTTP-date, capped.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(max(secs, 0)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// cleanURLError drops the URL from *url.Error, which may carry credentials;
// the caller names the redacted target itself.
func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
