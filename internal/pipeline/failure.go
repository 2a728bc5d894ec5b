package pipeline

import "errors"

// ComponentError is a fatal error that came from one source or one sink.
// Its message already names the component; LogAttrs turns the name into
// the source= or sink= attribute every error line carries.
type ComponentError struct {
	Source, Sink string // one of them is set
	Err          error
}

func (e *ComponentError) Error() string { return e.Err.Error() }
func (e *ComponentError) Unwrap() error { return e.Err }

// LogAttrs returns the log attributes naming the source or sink err came
// from ("source", NAME or "sink", NAME), or nil.
func LogAttrs(err error) []any {
	var ce *ComponentError
	switch {
	case !errors.As(err, &ce):
		return nil
	case ce.Source != "":
		return []any{"source", ce.Source}
	default:
		return []any{"sink", ce.Sink}
	}
}

func sourceFailed(name string, err error) error { return &ComponentError{Source: name, Err: err} }
func sinkFailed(name string, err error) error   { return &ComponentError{Sink: name, Err: err} }
