// Package httpsink (import path github.com/ferry-cdc/ferry/connectors/http)
// is the `type: http` sink: it delivers CloudEvents to one HTTP endpoint
// with the CloudEvents HTTP protocol binding.
//
//	sinks:
//	  audit:
//	    type: http
//	    url: https://audit.internal/events
//	    mode: binary            # binary | structured | batch
//	    headers: {Authorization: "Bearer ${AUDIT_TOKEN}"}
//	    concurrency: 8
//
// Modes: binary sends one request per event, attributes as ce-* headers and
// the data as the body; structured sends one request per event, the whole
// event as application/cloudevents+json; batch sends a JSON array of
// structured events as application/cloudevents-batch+json, at most
// batch_max_events events and batch_max_bytes bytes per request (an event
// larger than batch_max_bytes goes alone).
//
// Order: the events of one Write are spread over `concurrency` lanes by a
// hash of their ordering key (ferry.OrderingKey: the partitionkey extension,
// else the subject, else the id). Each lane sends its events one request
// after another, in batch order, while the lanes run in parallel; so events
// with the same key reach the endpoint in source order. When a request
// fails, the later events of its keys are not sent (ferry.NotAttempted) and
// the lane goes on with its other keys; the pipeline retries the failed key
// in order, holding back only that key.
//
// With adaptive_concurrency the number of lanes adapts after each Write
// (see aimd): a tenth fewer after push-back (429, 503, a request
// unanswered within the timeout, a clear rise of the response time), one
// more after a Write that used them all, from 1 to `concurrency`, waiting
// longer each time before it tries again a limit that was pushed back; the
// pipeline exports it as ferry_sink_concurrency (Sink.Concurrency).
//
// Binary mode percent-encodes every ce-* header value as the HTTP binding
// requires (space, '"', '%' and every byte outside printable ASCII become
// %XX of the UTF-8 bytes), so a receiver decoding per the binding gets the
// attribute back exactly.
//
// Shaping (request.go): the `request` block's CEL expressions (the
// variables of connectors/eventexpr) give each event its URL, headers and
// body; a body replaces the binding's (ce-* headers stay unless
// cloudevents_headers is false). The body bytes are built once per attempt
// from the event alone (no now()), so every attempt sends the same bytes;
// an expression that fails for an event fails it permanently, before
// anything is sent. Batch mode refuses the block.
//
// Rate limit (ratelimit.go): a token bucket per endpoint (scheme, host,
// port of the request's URL) shared by the lanes; a request waits for its
// turn before its timeout starts and before its response time is measured
// for adaptive concurrency.
//
// Outcomes: 2xx acknowledges the request's events. 408, 425, 429, 5xx,
// timeouts and network errors are transient, and so are 401, 403 and 407
// (the operator fixes credentials while the events wait); 429 and 503 carry
// the endpoint's Retry-After (seconds or HTTP date, at most 10 minutes) as
// ferry.RetryAfter. Redirects are not followed and, like 400, 404, 405, 409,
// 410, 413, 415, 422 and every other 4xx, are permanent (ferry.Permanent),
// with the status and the first 512 bytes of the response in the error;
// transient_statuses and permanent_statuses override this per sink. A
// request net/http cannot send (a control character in a header) fails
// permanently without being sent. In batch mode a 413 splits the batch in
// halves down to single events, so only an event too large alone fails. The
// sink never retries by itself: that, and dead-lettering, is the pipeline's
// job.
//
// Outbound webhooks (sign.go, oauth.go, auth.go): `sign` signs every
// request with Standard Webhooks or a plain HMAC header, `oauth2` sends a
// client credentials token, `tls` presents a client certificate. roundTrip
// applies them as the last step before sending, over the final body and
// headers, again on every attempt. With `sign`, 401 and 403 are permanent
// (the endpoint refused the signature) unless transient_statuses lists
// them; a 401 to a request carrying a token fetches a new token and sends
// once more; no token (token endpoint down or refusing the client) is a
// transient *TokenError and nothing is sent.
//
// Requests go through the sink's own http.Client, which honours the
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables. Header values
// are secrets: they are sent, never logged nor put in errors; and logs and
// errors show the URL without user information or query.
package httpsink
