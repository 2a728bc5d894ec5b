package httpsink

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/ferry-cdc/ferry"
)

// TestRandomBodies sends events with random data through a body expression
// that wraps it, and a header taken from it, and compares what the
// endpoint got with the data: every value arrives (big integers as
// strings, as rules write them), and a header value that would inject a
// header fails its event alone.
func TestRandomBodies(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := testingSeed(); s != 0 {
		seed = s
	}
	t.Logf("seed %d (HTTP_BODY_SEED=%d to repeat)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	var rs bodyServer
	url := rs.start(t)
	s, _ := newSink(t, url, func(c *Config) {
		c.Concurrency = 3
		c.Request = RequestConfig{Body: `{"id": id, "payload": data.payload}`, Headers: map[string]string{"X-Ref": "data.ref"}}
	})
	const n = 200
	events := make([]*event.Event, n)
	want := map[string]any{}
	bad := map[int]bool{}
	for i := range events {
		payload := randomValue(rng, 3)
		ref := randomHeader(rng)
		data, err := json.Marshal(map[string]any{"payload": payload, "ref": ref})
		if err != nil {
			t.Fatal(err)
		}
		id := "r-" + strconv.Itoa(i)
		events[i] = crmEvent(id, id, string(data))
		if strings.ContainsAny(ref, "\r\n") {
			bad[i] = true
			continue
		}
		var back map[string]any
		if err := decodeNormalized(data, &back); err != nil {
			t.Fatal(err)
		}
		want[id] = map[string]any{"id": id, "payload": bigIntsAsStrings(back["payload"])}
	}
	err := s.Write(context.Background(), events)
	var be *ferry.BatchError
	if len(bad) > 0 && !errors.As(err, &be) || len(bad) == 0 && err != nil {
		t.Fatalf("Write = %v with %d header injections", err, len(bad))
	}
	for i := range bad {
		if e := be.Failed(i); !ferry.IsPermanent(e) || !errors.Is(e, errHeaderInjection) {
			t.Errorf("event %d: %v, want the header injection refused", i, e)
		}
	}
	got := rs.requests()
	if len(got) != n-len(bad) {
		t.Fatalf("%d requests, want %d", len(got), n-len(bad))
	}
	for _, r := range got {
		var body map[string]any
		if err := decodeNormalized([]byte(r.body), &body); err != nil {
			t.Fatalf("body %q: %v", r.body, err)
		}
		id, _ := body["id"].(string)
		if !reflect.DeepEqual(body, want[id]) {
			t.Errorf("event %s: got %s\nwant %#v", id, r.body, want[id])
		}
	}
}

// testingSeed reads HTTP_BODY_SEED, which replays a seed; 0 when unset.
func testingSeed() uint64 {
	v, _ := strconv.ParseUint(strings.TrimSpace(os.Getenv("HTTP_BODY_SEED")), 10, 64)
	return v
}

// decodeNormalized decodes JSON with whole numbers as int64, others float64.
func decodeNormalized(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	normalizeNumbers(v)
	return nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case *map[string]any:
		normalizeNumbers(*x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

const maxSafeJSONInt = 1<<53 - 1

// bigIntsAsStrings is what the body encoder does to integers JSON readers
// cannot hold exactly.
func bigIntsAsStrings(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = bigIntsAsStrings(e)
		}
	case []any:
		for i, e := range x {
			x[i] = bigIntsAsStrings(e)
		}
	case int64:
		if x > maxSafeJSONInt || x < -maxSafeJSONInt {
			return strconv.FormatInt(x, 10)
		}
	}
	return v
}

var randomRunes = []rune("aZ09 _-\"\\/<>&\t\n\u00e9\u00fc\u4e16\U0001F680\u2028\x00\x1f")

func randomString(rng *rand.Rand) string {
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteRune(randomRunes[rng.IntN(len(randomRunes))])
	}
	return b.String()
}

// randomHeader is a token, now and then with a line break in it.
func randomHeader(rng *rand.Rand) string {
	s := "ref-" + strconv.Itoa(rng.IntN(1e6))
	if rng.IntN(10) == 0 {
		s += []string{"\r\nX-Admin: 1", "\nx", "\r"}[rng.IntN(3)]
	}
	return s
}

func randomValue(rng *rand.Rand, depth int) any {
	k := rng.IntN(8)
	if depth == 0 {
		k = rng.IntN(6)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return rng.Int64N(2000) - 1000
	case 3: // beyond 2^53 now and then
		return int64(rng.Uint64() >> (rng.IntN(20)))
	case 4:
		f := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(30)-15))
		return f
	case 5:
		return randomString(rng)
	case 6:
		l := make([]any, rng.IntN(4))
		for i := range l {
			l[i] = randomValue(rng, depth-1)
		}
		return l
	default:
		m := map[string]any{}
		for range rng.IntN(5) {
			m[randomString(rng)] = randomValue(rng, depth-1)
		}
		return m
	}
}
