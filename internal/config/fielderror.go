package config

import (
	"errors"
	"fmt"
)

// FieldError is what a connector's Validate method returns to name the key
// that is wrong, relative to the connector's own configuration block (for
// example "verify.secret" or "include[2]"). The loader turns it into an
// Error carrying the file and line of that key.
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

// Validator is implemented by connector configurations. Validate reports
// every problem it finds, joined with errors.Join; each should be a
// *FieldError so the loader can point at the offending line.
type Validator interface {
	Validate() error
}

// fieldErrors flattens errors.Join trees into their leaves.
func fieldErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []error{fe}
	}
	return []error{err}
}
