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
// hash of their ordering key (the partitionkey extension, else the subject,
// else the id). Each lane sends its events one request after another, in
// batch order, while the lanes run in parallel; so events with the same key
// reach the endpoint in source order. When a request fails, the rest of its
// lane is not sent and is reported failed, so that no event overtakes an
// earlier one with the same key when the pipeline retries.
//
// Outcomes: 2xx acknowledges the request's events. 429 and 503 are transient
// and carry the endpoint's Retry-After (seconds or HTTP date, at most 10
// minutes) as ferry.RetryAfter; other 5xx, 408, timeouts and network errors
// are transient; redirects are not followed and, like every other 4xx, are
// permanent (ferry.Permanent), with the status and the first 512 bytes of
// the response in the error. The sink never retries by itself: that, and
// dead-lettering, is the pipeline's job.
//
// Requests go through the sink's own http.Client, which honours the
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY environment variables. Header values
// are secrets: they are sent, never logged nor put in errors; and logs and
// errors show the URL without user information or query.
package httpsink
