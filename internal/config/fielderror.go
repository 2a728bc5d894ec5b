package config

import (
	"errors"

	"github.com/ferry-cdc/ferry"
)

// Validator is implemented by connector configurations with rules their
// ferry tags cannot state (see ferry.CheckConfig).
type Validator = ferry.Validator

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
