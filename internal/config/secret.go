package config

import "log/slog"

// redacted is what a Secret prints as, everywhere.
const redacted = "[redacted]"

// Secret is a configuration string that must never appear in logs, errors or
// dumps: every formatting path prints "[redacted]". Use Reveal only where the
// value is handed to the system that needs it (a password to a driver, a key
// to an HMAC).
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

// MarshalText keeps text encoders (YAML, env dumps) free of the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
