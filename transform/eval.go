package transform

import (
	"fmt"
	"math"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/ferry-cdc/ferry"
)

func (w *Worker) eval(e *expr) (ref.Val, error) {
	if e.lit != nil {
		return e.lit, nil
	}
	v, _, err := e.prog.Eval(&w.act)
	return v, err
}

func (w *Worker) evalBool(p *expr) (bool, error) {
	if p == nil {
		return true, nil
	}
	v, err := w.eval(p)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluated to %s, want bool", v.Type())
	}
	return bool(b), nil
}

// evalString overrides *dst with p's result when p is set.
func (w *Worker) evalString(p *expr, attr string, dst *string) error {
	if p == nil {
		return nil
	}
	v, err := w.eval(p)
	if err != nil {
		return fmt.Errorf("%s: %w", attr, err)
	}
	s, ok := v.(types.String)
	if !ok {
		return fmt.Errorf("%s evaluated to %s, want string", attr, v.Type())
	}
	*dst = string(s)
	return nil
}

// ruleEvent builds the event a matching rule yields: its defaults (the
// default mapping, or the outbox row) overridden by its expressions.
func (w *Worker) ruleEvent(r *rule, c *ferry.Change) (*event.Event, error) {
	w.base = eventBase{}
	b := &w.base
	if r.outbox != nil {
		w.e.mapping.base(c, b, false, nil, nil)
		if err := r.outbox.base(c, b); err != nil {
			return nil, err
		}
	} else {
		w.scratch = w.e.mapping.base(c, b, r.data == nil, w.scratch, &w.arena)
		b.id = b.id + "/" + r.name // several rules may match one change: ids must differ
	}
	if err := w.overrideAttributes(r, b); err != nil {
		return nil, err
	}
	if err := w.overrideData(r, b); err != nil {
		return nil, err
	}
	for _, x := range r.extensions {
		v, err := w.eval(x.prog)
		if err != nil {
			return nil, fmt.Errorf("extension %s: %w", x.name, err)
		}
		b.setExtension(x.name, extensionValue(v))
	}
	if b.id == "" || b.typ == "" {
		return nil, fmt.Errorf("the event's id and type must not be empty")
	}
	return b.event(&w.arena), nil
}

func (w *Worker) overrideAttributes(r *rule, b *eventBase) error {
	for _, a := range [...]struct {
		p    *expr
		name string
		dst  *string
	}{{r.id, "id", &b.id}, {r.typ, "type", &b.typ}, {r.subject, "subject", &b.subject},
		{r.dataSchema, "dataschema", &b.dataSchema}, {r.dataType, "datacontenttype", &b.dataType}} {
		if err := w.evalString(a.p, a.name, a.dst); err != nil {
			return err
		}
	}
	if r.sourceURI != nil {
		b.source = *r.sourceURI
	} else if r.source != nil {
		var src string
		if err := w.evalString(r.source, "source", &src); err != nil {
			return err
		}
		u := cetypes.ParseURIRef(src)
		if src == "" || u == nil {
			return fmt.Errorf("source %q is not a URI reference", src)
		}
		b.source = *u
	}
	if r.time != nil {
		t, err := w.evalTime(r.time)
		if err != nil {
			return err
		}
		b.time = t
	}
	return nil
}

func (w *Worker) evalTime(p *expr) (time.Time, error) {
	v, err := w.eval(p)
	if err != nil {
		return time.Time{}, fmt.Errorf("time: %w", err)
	}
	switch t := v.(type) {
	case types.Timestamp:
		return t.Time, nil
	case types.String:
		parsed, err := time.Parse(time.RFC3339Nano, string(t))
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q is not RFC 3339: %w", string(t), err)
		}
		return parsed, nil
	}
	return time.Time{}, fmt.Errorf("time evaluated to %s, want timestamp or string", v.Type())
}

// overrideData evaluates the data expression. With a non-JSON content
// type, a string or bytes result is the payload as it is.
func (w *Worker) overrideData(r *rule, b *eventBase) error {
	if r.data == nil {
		return nil
	}
	if r.dataFields != nil && (b.dataType == "" || isJSONType(b.dataType)) {
		return w.dataFromFields(r, b)
	}
	v, err := w.eval(r.data)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if b.dataType != "" && !isJSONType(b.dataType) {
		switch d := v.(type) {
		case types.String:
			b.data = []byte(d)
			return nil
		case types.Bytes:
			b.data = append([]byte(nil), d...)
			return nil
		}
	}
	w.scratch, err = appendCEL(w.scratch[:0], v)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	b.data = w.arena.copy(w.scratch)
	return nil
}

// dataFromFields writes a map-literal data expression as a JSON object,
// field by field, in key order: the same bytes the whole map would give.
func (w *Worker) dataFromFields(r *rule, b *eventBase) error {
	buf := append(w.scratch[:0], '{')
	for i, f := range r.dataFields {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, f.key)
		buf = append(buf, ':')
		v, err := w.eval(f.val)
		if err != nil {
			return fmt.Errorf("data: %s: %w", f.key, err)
		}
		if buf, err = appendCEL(buf, v); err != nil {
			return fmt.Errorf("data: key %q: %w", f.key, err)
		}
	}
	w.scratch = append(buf, '}')
	b.data = w.arena.copy(w.scratch)
	return nil
}

func isJSONType(ct string) bool {
	return ct == contentTypeJSON || len(ct) > 5 && ct[len(ct)-5:] == "+json" || ct == "text/json"
}

// extensionValue maps a CEL value to a CloudEvents extension type: string,
// integer (32-bit), boolean or timestamp; anything else becomes its JSON text.
func extensionValue(v ref.Val) any {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Bool:
		return bool(x)
	case types.Int:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return int32(x)
		}
	case types.Timestamp:
		return x.Time.UTC()
	}
	b, err := appendCEL(nil, v)
	if err != nil {
		return fmt.Sprint(v.Value())
	}
	if s, ok := v.(types.Int); ok {
		return fmt.Sprint(int64(s))
	}
	return string(b)
}
