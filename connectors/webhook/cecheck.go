package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// requiredAttributes must be present, as non-empty strings, in every
// CloudEvent a request carries.
var requiredAttributes = []string{"specversion", "id", "source", "type"}

// checkStructured checks what the SDK's parser would accept silently or
// alter in a structured CloudEvent: both data and data_base64 (the spec
// allows one), extension names outside [a-z0-9], missing required
// attributes. A passed-through event must be valid as it is.
func checkStructured(raw json.RawMessage) error {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	var errs []string
	for _, name := range requiredAttributes {
		var v string
		if err := json.Unmarshal(members[name], &v); err != nil || v == "" {
			errs = append(errs, fmt.Sprintf("required attribute %s is missing or not a non-empty string", name))
		}
	}
	if _, data := members["data"]; data {
		if _, b64 := members["data_base64"]; b64 {
			errs = append(errs, "both data and data_base64 are present; a CloudEvent has at most one")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(members)) {
		if !validAttributeName(name) && name != "data_base64" {
			errs = append(errs, fmt.Sprintf("attribute name %q: CloudEvents attribute names are lowercase letters a-z and digits", name))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// validAttributeName reports whether name is a CloudEvents attribute name:
// lowercase ASCII letters and digits, not empty.
func validAttributeName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
