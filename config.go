package ferry

import (
	"fmt"
	"log/slog"
)

// This file holds what connector configurations share with the loader in
// internal/config: secrets that never print, and field-level validation
// errors the loader turns into file:line messages.

const redacted = "[redacted]"

// Secret is a configuration string that must never appear in logs, errors or
// dumps: every formatting path prints "[redacted]". Use Reveal only where the
// value is handed to the system that needs it (a password to a driver, a
// header to a request).
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps JSON dumps of a configuration free of the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps text encoders free of the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// FieldError is what a connector configuration's Validate method returns to
// name the key that is wrong, relative to its own block (for example
// "verify.secret" or "include[2]"). The loader reports it at the file and
// line of that key.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Invalid returns a *FieldError for field with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
