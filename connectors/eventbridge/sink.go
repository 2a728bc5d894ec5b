package eventbridge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/cel-go/cel"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/tracectx"
)

// PutEventsAPI is the one call the sink makes; *eventbridge.Client has it.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Sink puts events on an event bus.
type Sink struct {
	name      string
	cfg       *Config
	api       PutEventsAPI
	resources cel.Program
	log       *slog.Logger
	closed    atomic.Bool
	transport *http.Transport // nil with NewWithAPI
}

var _ ferry.Sink = (*Sink)(nil)

// New builds the sink with the SDK's client; it contacts nothing yet.
func New(ctx context.Context, name string, cfg *Config, log *slog.Logger) (*Sink, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("eventbridge sink %s: %w", name, err)
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), cfg.SessionToken.Reveal())))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("eventbridge sink %s: load AWS configuration: %w", name, err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	client := eventbridge.NewFromConfig(awsCfg, func(o *eventbridge.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.Retryer = aws.NopRetryer{} // retries, backoff and dead letters are the pipeline's
		o.HTTPClient = &http.Client{Transport: transport, Timeout: cfg.Timeout}
	})
	s, err := NewWithAPI(name, cfg, client, log)
	if err != nil {
		return nil, err
	}
	s.transport = transport
	return s, nil
}

// NewWithAPI builds the sink over any PutEvents implementation.
func NewWithAPI(name string, cfg *Config, api PutEventsAPI, log *slog.Logger) (*Sink, error) {
	if err := ferry.CheckConfig(cfg); err != nil {
		return nil, fmt.Errorf("eventbridge sink %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{name: name, cfg: cfg, api: api, log: log}
	if cfg.Resources != "" {
		s.resources, _ = resourcesProgram(cfg.Resources) // validated
	}
	return s, nil
}

// Open does nothing: credentials and the bus are checked by the first call.
func (s *Sink) Open(context.Context) error { return nil }

// Close stops accepting writes and releases idle connections.
func (s *Sink) Close(context.Context) error {
	s.closed.Store(true)
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	return nil
}

// Write puts the events in calls of at most 10 entries and 256 KB, up to
// Concurrency calls at once. Events with one ordering key (ferry.OrderingKey)
// share a lane and go in order, one of them per call (entries of a call
// succeed or fail independently); after a failure the later events of that
// key are not sent (ferry.NotAttempted) and the lane goes on with its other
// keys. (EventBridge itself does not promise delivery order to its targets.)
func (s *Sink) Write(ctx context.Context, events []*event.Event) error {
	if s.closed.Load() {
		return fmt.Errorf("eventbridge sink %s: %w", s.name, ferry.ErrClosed)
	}
	failed := make([]error, len(events))
	entries := make([]*types.PutEventsRequestEntry, len(events))
	keys := make([]string, len(events))
	trace := tracectx.FromContext(ctx)
	for i, e := range events {
		keys[i] = ferry.OrderingKey(e)
		en, err := s.entry(e)
		if err == nil {
			// X-Ray's form of the W3C context: EventBridge drops a trace
			// header X-Ray cannot parse, and passes a valid one to targets.
			if tp, _ := trace.For(i, e); tp != "" {
				en.TraceHeader = aws.String(tracectx.XRay(tp))
			}
		}
		if err == nil && entrySize(en) > maxRequestBytes {
			err = fmt.Errorf("entry of %d bytes exceeds EventBridge's 256 KB limit", entrySize(en))
		}
		if err != nil {
			failed[i] = ferry.Permanent(fmt.Errorf("eventbridge sink %s: event %s: %w", s.name, e.ID(), err))
			continue
		}
		entries[i] = en
	}
	var wg sync.WaitGroup
	for _, lane := range s.lanes(keys, entries) {
		wg.Go(func() { s.sendLane(ctx, events, keys, entries, lane, failed) })
	}
	wg.Wait()
	be := ferry.NewBatchError()
	for i, err := range failed {
		if err != nil {
			be.Fail(i, err)
		}
	}
	if be.Len() > 0 {
		return be
	}
	return nil
}

// lanes spreads the sendable events over Concurrency lanes by ordering key.
func (s *Sink) lanes(keys []string, entries []*types.PutEventsRequestEntry) [][]int {
	lanes := make([][]int, s.cfg.Concurrency)
	for i, key := range keys {
		if entries[i] == nil {
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(key))
		l := h.Sum32() % uint32(len(lanes))
		lanes[l] = append(lanes[l], i)
	}
	out := lanes[:0]
	for _, l := range lanes {
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// sendLane sends a lane in calls that respect the limits, with at most one
// event per ordering key in a call. After a call, the later events of the
// keys that failed in it are held back; the other keys go on.
func (s *Sink) sendLane(ctx context.Context, events []*event.Event, keys []string, entries []*types.PutEventsRequestEntry, lane []int, failed []error) {
	var blocked map[string]string // ordering key -> id of its failed event
	next := map[string]bool{}     // keys whose next event is in the call or waits
	for len(lane) > 0 {
		clear(next)
		var call, rest []int
		size := 0
		for _, i := range lane {
			if next[keys[i]] || len(call) == maxEntries || size+entrySize(entries[i]) > maxRequestBytes {
				rest = append(rest, i)
				next[keys[i]] = true // its later events wait too, keeping key order
				continue
			}
			next[keys[i]] = true
			size += entrySize(entries[i])
			call = append(call, i)
		}
		lane = rest
		if s.put(ctx, entries, call, failed) == nil {
			continue
		}
		if blocked == nil {
			blocked = map[string]string{}
		}
		for _, i := range call {
			if failed[i] != nil {
				blocked[keys[i]] = events[i].ID()
			}
		}
		rest = lane[:0:0]
		for _, i := range lane {
			if first, ok := blocked[keys[i]]; ok {
				failed[i] = ferry.NotAttempted(first)
			} else {
				rest = append(rest, i)
			}
		}
		lane = rest
	}
}

// put makes one PutEvents call and records each entry's outcome. It
// returns an error when anything in the call failed.
func (s *Sink) put(ctx context.Context, entries []*types.PutEventsRequestEntry, call []int, failed []error) error {
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(call))}
	for k, i := range call {
		in.Entries[k] = *entries[i]
	}
	// A lane makes call after call within one Write, and a fenced HA
	// leader's ctx reports itself done by the clock the moment its
	// deadline passes (see ha.Fence.Hold), before its timer closes Done.
	if err := ctx.Err(); err != nil {
		err = fmt.Errorf("eventbridge sink %s: PutEvents not sent: %w", s.name, err)
		for _, i := range call {
			failed[i] = err
		}
		return err
	}
	out, err := s.api.PutEvents(ctx, in)
	if err != nil && len(call) > 1 && apiCode(err) == "ValidationException" {
		// One bad entry refuses the whole call: find it by sending alone.
		var first error
		for _, i := range call {
			if e := s.put(ctx, entries, []int{i}, failed); e != nil && first == nil {
				first = e
			}
		}
		return first
	}
	if err != nil {
		err = s.classifyCall(err)
		for _, i := range call {
			failed[i] = err
		}
		s.log.Debug("PutEvents failed", "entries", len(call), "error", err)
		return err
	}
	if out.FailedEntryCount == 0 {
		return nil
	}
	var first error
	for k, i := range call {
		if k >= len(out.Entries) {
			failed[i] = fmt.Errorf("eventbridge sink %s: no result for entry %d", s.name, k)
			continue
		}
		if r := out.Entries[k]; r.ErrorCode != nil {
			failed[i] = classifyEntry(s.name, aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
			if first == nil {
				first = failed[i]
			}
		}
	}
	s.log.Debug("PutEvents partly failed", "failed", out.FailedEntryCount, "of", len(call), "first_error", first)
	if first == nil {
		first = fmt.Errorf("eventbridge sink %s: %d entries failed", s.name, out.FailedEntryCount)
	}
	return first
}

// transientCodes are the per-entry and call error codes worth retrying.
var transientCodes = map[string]bool{"ThrottlingException": true, "InternalFailure": true, "InternalException": true,
	"ServiceUnavailable": true, "ServiceUnavailableException": true, "RequestTimeout": true}

func classifyEntry(sink, code, msg string) error {
	err := fmt.Errorf("eventbridge sink %s: entry rejected: %s: %s", sink, code, msg)
	if transientCodes[code] {
		return err
	}
	return ferry.Permanent(err)
}

// classifyCall: only a call refused for its content (a single entry the
// service rejects) is permanent. Throttling, server errors and network
// trouble are transient, and so are credential and permission errors: the
// operator fixes those, and the events wait rather than being dead-lettered.
func (s *Sink) classifyCall(err error) error {
	err = fmt.Errorf("eventbridge sink %s: PutEvents: %w", s.name, err)
	switch apiCode(err) {
	case "ValidationException", "SerializationException":
		return ferry.Permanent(err)
	}
	return err
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
