package ferry

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverFormats(t *testing.T) {
	s := Secret("hunter2")
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "password", s, "cfg", struct{ P Secret }{s})
	js, _ := json.Marshal(map[string]Secret{"p": s})
	for _, out := range []string{s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v", s, s, s), logs.String(), string(js)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2" || !s.IsSet() {
		t.Fatal("Reveal/IsSet wrong")
	}
}

func TestFieldErrorUnwraps(t *testing.T) {
	err := Invalid("verify.secret", "must be at least %d bytes", 16)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "verify.secret" || err.Error() != "verify.secret: must be at least 16 bytes" {
		t.Fatalf("Invalid = %#v", err)
	}
}
