package config

import (
	"errors"

	"github.com/ferry-cdc/ferry"
)

// Validator is implemented by connector configurations. Validate reports
// every problem it finds, joined with errors.Join; each should be a
// *ferry.FieldError so the loader can point at the offending line.
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
	var fe *ferry.FieldError
	if errors.As(err, &fe) {
		return []error{fe}
	}
	return []error{err}
}
