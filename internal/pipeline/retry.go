package pipeline

import "github.com/ferry-cdc/ferry/internal/retry"

// RetryPolicy bounds how a sink's transient failures are retried: the
// sink's `retry:` configuration, declared once in package retry, whose
// Delay the sink worker waits (exponential, capped, jittered, Retry-After
// honoured up to MaxRetryAfter).
type RetryPolicy = retry.Policy
