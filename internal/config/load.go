package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-cdc/ferry"
	"go.yaml.in/yaml/v3"
)

// Option changes how Load works; for tests.
type Option func(*loader)

// WithLookupEnv replaces os.LookupEnv for ${VAR} expansion.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(l *loader) { l.lookupEnv = f }
}

type loader struct {
	unreadable bool            // a file could not be read or parsed
	declared   map[string]bool // "sources"/"sinks" that have at least one block, valid or not
	d          *decoder
	reg        Registry
	lookupEnv  func(string) (string, bool)
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Load reads, expands, merges, decodes and validates the files, in order.
// On any problem it returns Errors holding every problem found.
func Load(paths []string, reg Registry, opts ...Option) (*Config, error) {
	l := &loader{
		d:         &decoder{files: map[*yaml.Node]string{}, expanded: map[*yaml.Node]string{}, pos: map[string]Pos{}},
		reg:       reg,
		lookupEnv: os.LookupEnv,
		declared:  map[string]bool{},
	}
	for _, o := range opts {
		o(l)
	}
	var root *yaml.Node
	for _, p := range paths {
		n := l.parseFile(p)
		if n == nil {
			continue
		}
		if root == nil {
			root = n
		} else {
			l.mergeInto(root, n, true)
		}
	}
	cfg := defaults()
	cfg.Files = paths
	if root != nil {
		l.decodeRoot(root, cfg)
	}
	l.check(cfg, firstFile(paths))
	cfg.redactor = newRedactor(l.d.expanded)
	if len(l.d.errs) > 0 {
		for _, e := range l.d.errs {
			e.Msg = cfg.redactor.Redact(e.Msg)
		}
		sortErrors(l.d.errs, paths)
		return nil, l.d.errs
	}
	cfg.positions = l.d.pos
	return cfg, nil
}

func firstFile(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	return paths[0]
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// parseFile returns the file's root mapping (nil for an empty or broken
// file), with values expanded and every node attributed to the file.
func (l *loader) parseFile(path string) *yaml.Node {
	data, err := os.ReadFile(path)
	if err != nil {
		l.d.errs = append(l.d.errs, &Error{Pos: Pos{File: path}, Msg: "cannot read: " + unwrapPathError(err).Error()})
		l.unreadable = true
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := &Error{Pos: Pos{File: path}, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
			e.Pos.Line, _ = strconv.Atoi(m[1])
			e.Pos.Column = 1
			e.Msg = strings.TrimPrefix(e.Msg, m[0]+": ")
		}
		l.d.errs = append(l.d.errs, e)
		l.unreadable = true
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	l.attribute(&doc, path)
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		if !isNull(root) {
			l.d.errorf(root, "", "the top level must be a mapping of keys (state, admin, sources, transforms, sinks, ...), got %s", kindName(root))
		}
		return nil
	}
	l.expandTree(root, filepath.Dir(path))
	return root
}

func (l *loader) attribute(n *yaml.Node, file string) {
	l.d.files[n] = file
	for _, c := range n.Content {
		l.attribute(c, file)
	}
}

func (l *loader) decodeRoot(root *yaml.Node, cfg *Config) {
	d := l.d
	d.each(root, "", func(key string, p pair) {
		switch key {
		case "state":
			d.decode(p.value, reflect.ValueOf(&cfg.State).Elem(), key)
		case "admin":
			d.decode(p.value, reflect.ValueOf(&cfg.Admin).Elem(), key)
		case "log":
			d.decode(p.value, reflect.ValueOf(&cfg.Log).Elem(), key)
		case "pipeline":
			d.decode(p.value, reflect.ValueOf(&cfg.Pipeline).Elem(), key)
		case "defaults":
			d.decode(p.value, reflect.ValueOf(&cfg.Defaults).Elem(), key)
		case "ha":
			d.decode(p.value, reflect.ValueOf(&cfg.HA).Elem(), key)
		case "tracing":
			d.decode(p.value, reflect.ValueOf(&cfg.Tracing).Elem(), key)
		case "transforms":
			d.decode(p.value, reflect.ValueOf(&cfg.Transforms).Elem(), key)
		case "sources":
			l.blocks(p.value, "sources", func(name string, typ string, block *yaml.Node, rest []pair) {
				spec, ok := l.reg.NewSourceConfig(typ)
				if !ok {
					d.errorf(block, "sources."+name+".type", "unknown source type %q (known: %s)", typ, strings.Join(l.reg.SourceTypes(), ", "))
					return
				}
				l.connector(spec, rest, block, "sources."+name)
				cfg.Sources[name] = &Source{Name: name, Type: typ, Spec: spec}
			})
		case "sinks":
			l.blocks(p.value, "sinks", func(name string, typ string, block *yaml.Node, rest []pair) {
				spec, ok := l.reg.NewSinkConfig(typ)
				if !ok {
					d.errorf(block, "sinks."+name+".type", "unknown sink type %q (known: %s)", typ, strings.Join(l.reg.SinkTypes(), ", "))
					return
				}
				sink := &Sink{Name: name, Type: typ, Retry: defaultRetry(), Spec: spec}
				rest = l.takeRetry(rest, &sink.Retry, "sinks."+name)
				l.connector(spec, rest, block, "sinks."+name)
				cfg.Sinks[name] = sink
			})
		default:
			d.errorf(p.key, key, "unknown key%s (known: admin, defaults, ha, log, pipeline, sinks, sources, state, tracing, transforms)",
				suggest(key, []string{"admin", "defaults", "ha", "log", "pipeline", "sinks", "sources", "state", "tracing", "transforms"}))
		}
	})
}

// blocks walks a `sources:` or `sinks:` mapping, checks each name and its
// `type`, and hands the remaining keys to fn. fn gets the node of the type
// value for errors about the type.
func (l *loader) blocks(n *yaml.Node, section string, fn func(name, typ string, typeNode *yaml.Node, rest []pair)) {
	n = resolve(n)
	if !l.d.expectMapping(n, section) {
		return
	}
	l.d.each(n, section, func(name string, p pair) {
		path := section + "." + name
		l.declared[section] = true
		if !nameRe.MatchString(name) {
			l.d.errorf(p.key, path, "invalid name: use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)")
		}
		block := resolve(p.value)
		if block.Kind != yaml.MappingNode {
			l.d.errorf(block, path, "expected a mapping with a type, got %s", kindName(block))
			return
		}
		var typ *yaml.Node
		var rest []pair
		for _, bp := range pairs(block) {
			if bp.key.Value == "type" {
				typ = resolve(bp.value)
				l.d.pos[path+".type"] = l.d.at(bp.key)
				continue
			}
			rest = append(rest, bp)
		}
		if typ == nil || typ.Kind != yaml.ScalarNode || typ.Value == "" {
			l.d.errorf(p.key, path, "missing type (a %s needs `type:`)", strings.TrimSuffix(section, "s"))
			return
		}
		fn(name, typ.Value, typ, rest)
	})
}

func (l *loader) takeRetry(rest []pair, retry *RetryPolicy, path string) []pair {
	out := rest[:0:0]
	for _, p := range rest {
		if p.key.Value == "retry" {
			l.d.pos[path+".retry"] = l.d.at(p.key)
			l.d.decode(p.value, reflect.ValueOf(retry).Elem(), path+".retry")
			continue
		}
		out = append(out, p)
	}
	return out
}

// connector decodes a connector block strictly into spec and checks it
// (the rules of its ferry tags, then its Validate), placing each
// FieldError at its key.
func (l *loader) connector(spec any, rest []pair, block *yaml.Node, path string) {
	m := &yaml.Node{Kind: yaml.MappingNode, Line: block.Line, Column: block.Column}
	for _, p := range rest {
		m.Content = append(m.Content, p.key, p.value)
	}
	l.d.files[m] = l.d.files[block]
	before := len(l.d.errs)
	l.d.decode(m, reflect.ValueOf(spec), path)
	failed := map[string]bool{} // keys that did not decode: their zero values would only add noise
	for _, e := range l.d.errs[before:] {
		failed[e.Path] = true
	}
	for _, err := range fieldErrors(ferry.CheckConfig(spec)) {
		var fe *ferry.FieldError
		if errors.As(err, &fe) {
			if failed[path+"."+fe.Field] {
				continue
			}
			l.d.errs = append(l.d.errs, newError(l.d.pos, path+"."+fe.Field, "%v", fe.Err))
		} else {
			l.d.errs = append(l.d.errs, &Error{Pos: l.d.pos[path], Path: path, Msg: err.Error()})
		}
	}
}

// newError positions an error at path, or at its nearest written parent.
func newError(pos map[string]Pos, path, format string, args ...any) *Error {
	return &Error{Pos: nearest(pos, path), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func nearest(pos map[string]Pos, path string) Pos {
	for p := path; p != ""; {
		if at, ok := pos[p]; ok {
			return at
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return Pos{}
}

// check validates the top-level settings and every cross reference.
func (l *loader) check(cfg *Config, first string) {
	add := func(path, format string, args ...any) {
		e := newError(l.d.pos, path, format, args...)
		if e.Pos.File == "" {
			e.Pos.File = first
		}
		l.d.errs = append(l.d.errs, e)
	}
	if cfg.State.Dir == "" {
		add("state.dir", "must not be empty")
	}
	if cfg.State.CheckpointInterval <= 0 {
		add("state.checkpoint_interval", "must be positive")
	}
	switch cfg.Admin.Listen {
	case "", "off":
		cfg.Admin.Listen = ""
	default:
		if _, _, err := net.SplitHostPort(cfg.Admin.Listen); err != nil {
			add("admin.listen", "must be host:port (or off): %v", err)
		}
	}
	if cfg.Admin.MaxLag < 0 {
		add("admin.max_lag", "must not be negative (0 leaves lag out of readiness)")
	}
	checkAdminTLS(cfg.Admin.TLS, add)
	if cfg.Admin.Pprof && !cfg.Admin.Token.IsSet() {
		add("admin.pprof", "needs admin.token: profiles are served only to callers with the bearer token")
	}
	for _, err := range fieldErrors(ferry.CheckConfig(cfg)) { // the top-level keys' ferry tags
		var fe *ferry.FieldError
		if errors.As(err, &fe) {
			add(fe.Field, "%v", fe.Err)
		}
	}
	if cfg.Pipeline.MaxInFlight < 1 {
		add("pipeline.max_in_flight", "must be at least 1")
	}
	if cfg.Pipeline.MaxInFlightBytes < 1<<20 {
		add("pipeline.max_in_flight_bytes", "must be at least 1048576 (1 MiB)")
	}
	if cfg.Pipeline.ShutdownTimeout <= 0 {
		add("pipeline.shutdown_timeout", "must be positive")
	}
	if cfg.Pipeline.SinkLinger < 0 || cfg.Pipeline.SinkLinger > maxSinkLinger {
		add("pipeline.sink_linger", "must be between 0 (off) and 1s")
	}
	if cfg.Defaults.TypePrefix == "" || strings.ContainsAny(cfg.Defaults.TypePrefix, " \t") {
		add("defaults.type_prefix", "must be a non-empty name without spaces, like com.example")
	}
	for name, s := range cfg.Sinks {
		r := s.Retry
		if r.InitialBackoff <= 0 || r.MaxBackoff < r.InitialBackoff || r.MaxAttempts < 0 || r.MaxRetryAfter < 0 {
			add("sinks."+name+".retry", "needs initial_backoff > 0, max_backoff >= initial_backoff, max_attempts >= 0 and max_retry_after >= 0")
		}
	}
	if !l.declared["sources"] && !l.unreadable {
		add("sources", "no source is configured")
	}
	if !l.declared["sinks"] && !l.unreadable {
		add("sinks", "no sink is configured")
	}
	checkRefs("defaults.to", cfg.Defaults.To, cfg.Sinks, "sink", add)
	if d := cfg.Pipeline.DeadLetterSink; d != "" {
		checkRefs("pipeline.dead_letter_sink", []string{d}, cfg.Sinks, "sink", func(_ string, f string, a ...any) {
			add("pipeline.dead_letter_sink", f, a...)
		})
	}
	checkHA(cfg, add)
	checkTracing(&cfg.Tracing, add)
	l.checkTransforms(cfg, add)
}

func (l *loader) checkTransforms(cfg *Config, add func(string, string, ...any)) {
	seen := map[string]int{}
	for i, t := range cfg.Transforms {
		path := "transforms[" + strconv.Itoa(i) + "]"
		if t == nil {
			add(path, "empty rule")
			continue
		}
		switch {
		case t.Name == "":
			add(path, "missing name")
		case !nameRe.MatchString(t.Name):
			add(path+".name", "invalid name %q: use letters, digits, '.', '_' and '-'", t.Name)
		default:
			if j, dup := seen[t.Name]; dup {
				add(path+".name", "duplicate rule name %q (also transforms[%d])", t.Name, j)
			}
			seen[t.Name] = i
		}
		if len(t.To) == 0 && !t.Drop {
			add(path, "needs `to:` (the sinks of its events) or `drop: true`")
		}
		checkRefs(path+".from", t.From, cfg.Sources, "source", add)
		checkRefs(path+".to", t.To, cfg.Sinks, "sink", add)
	}
}

func checkRefs[V any](path string, names []string, known map[string]V, what string, add func(string, string, ...any)) {
	for i, n := range names {
		if _, ok := known[n]; !ok {
			add(path+"["+strconv.Itoa(i)+"]", "unknown %s %q (known: %s)", what, n, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
		}
	}
}

func checkAdminTLS(t AdminTLS, add func(string, string, ...any)) {
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		add("admin.tls", "needs both cert_file and key_file")
	case t.ClientCAFile != "" && t.CertFile == "":
		add("admin.tls.client_ca_file", "needs cert_file and key_file: client certificates are asked for over TLS")
	}
	for _, f := range []struct{ key, file string }{{"cert_file", t.CertFile}, {"key_file", t.KeyFile}, {"client_ca_file", t.ClientCAFile}} {
		if f.file == "" {
			continue
		}
		if _, err := os.Stat(f.file); err != nil {
			add("admin.tls."+f.key, "cannot read %s: %v", f.file, unwrapPathError(err))
		}
	}
}
