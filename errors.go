package ferry

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors shared by the pipeline and the connectors.
var (
	// ErrEndOfInput is returned by Read of a finite source (a backfill, a
	// replay with an end) after its last batch.
	ErrEndOfInput = errors.New("end of input")
	// ErrClosed is returned by operations on a closed source or sink.
	ErrClosed = errors.New("closed")
	// ErrConflict is returned for a request that conflicts with work in
	// progress (a second backfill of one table).
	ErrConflict = errors.New("conflicts with work in progress")
	// ErrNotAttempted marks an event a sink did not send because an
	// earlier event of its ordering key failed in the same Write (see
	// NotAttempted): the pipeline retries it without counting an attempt.
	ErrNotAttempted = errors.New("not attempted: an earlier event of the same ordering key failed")
	// ErrSinkFenced is returned by a transactional sink whose identity
	// another instance took over (Kafka: a producer with the same
	// transactional id initialized after this one): it must not write
	// again, and the pipeline stops rather than retry and steal the
	// identity back.
	ErrSinkFenced = errors.New("fenced by another instance with the same identity")
	// ErrDataNotJSON is returned by WriteStructured for an event whose
	// data the JSON format would carry as JSON (a JSON content type, not
	// base64) but is not JSON: the event skipped MarkBinaryData.
	ErrDataNotJSON = errors.New("data is not valid JSON for its JSON content type")
)

// PermanentError marks a failure that retrying cannot fix (a 4xx answer, an
// event too large for the destination). The pipeline dead-letters the event.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that IsPermanent reports true for it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or any error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError is a transient failure whose destination named the delay
// before the next attempt (HTTP 429/503 Retry-After, throttling).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with a minimum delay before the next attempt.
func RetryAfter(err error, after time.Duration) error {
	return &RetryAfterError{Err: err, After: after}
}

// RetryDelay returns the delay err asks for, if it carries one.
func RetryDelay(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// NotAttempted is the error a sink reports for an event it held back
// because the event of the same ordering key with id earlier failed.
func NotAttempted(earlier string) error {
	return fmt.Errorf("%w (event %s)", ErrNotAttempted, earlier)
}

// IsNotAttempted reports whether err says the event was never sent.
func IsNotAttempted(err error) bool { return errors.Is(err, ErrNotAttempted) }
