package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// TestQuickStart runs the README's quick start exactly as a new user would
// (in its --once form) and checks the CloudEvents it printed.
func TestQuickStart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../scripts/quickstart.sh", "--once")
	cmd.Env = append(os.Environ(), "FERRY_QUICKSTART_DIR="+dir, "FERRY_QUICKSTART_PORT="+portOf(freeAddr(t)),
		"FERRY_ADMIN_LISTEN="+freeAddr(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("quickstart.sh --once: %v\nstderr:\n%s", err, stderr.String())
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line is not a CloudEvent: %q: %v", sc.Text(), err)
		}
		types = append(types, strings.TrimPrefix(e.Type(), "com.example.shop.orders."))
	}
	want := "created created updated created created deleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("quick start events: %s, want %s\nstderr:\n%s", got, want, stderr.String())
	}
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return fmt.Sprint(addr[i+1:])
}
