package app

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/internal/config"
)

// checkRuleHeaders refuses rules that read a credential or signature
// header of a webhook source they take requests from: those headers are
// removed before a request is journaled, so the rule would see nothing,
// and a rule asking for them is a mistake about what leaves Ferry.
func checkRuleHeaders(cfg *config.Config) config.Errors {
	var errs config.Errors
	for i, t := range cfg.Transforms {
		secret := ruleSecretHeaders(cfg, t.From)
		if len(secret) == 0 {
			continue
		}
		path := fmt.Sprintf("transforms[%d]", i)
		exprs := ruleExpressions(t)
		for _, key := range slices.Sorted(maps.Keys(exprs)) {
			if h := headerRead(exprs[key], secret); h != "" {
				errs = append(errs, cfg.Errorf(path+"."+key, "reads the %s header: credential and signature headers never reach rules", h))
			}
		}
	}
	return errs
}

// ruleSecretHeaders are the secret headers of the sources (webhooks) a rule
// with from reads (every source when from is empty).
func ruleSecretHeaders(cfg *config.Config, from []string) []string {
	if len(from) == 0 {
		from = cfg.SourceNames()
	}
	var out []string
	for _, name := range from {
		if s, ok := cfg.Sources[name]; ok {
			if w, ok := s.Spec.(ferry.HeaderScrubber); ok {
				out = append(out, w.SecretHeaders()...)
			}
		}
	}
	return out
}

// ruleExpressions are a rule's CEL expressions by key path.
func ruleExpressions(t *config.Transform) map[string]string {
	e := t.Event
	out := map[string]string{"when": t.When, "event.id": e.ID, "event.source": e.Source, "event.type": e.Type,
		"event.subject": e.Subject, "event.time": e.Time, "event.dataschema": e.DataSchema,
		"event.datacontenttype": e.DataContentType, "event.data": e.Data}
	for _, ext := range slices.Sorted(maps.Keys(e.Extensions)) {
		out["event.extensions."+ext] = e.Extensions[ext]
	}
	return out
}

var headerAccess = regexp.MustCompile(`headers\s*(?:\[\s*["']([^"']+)["']\s*\]|\.\s*([A-Za-z_][A-Za-z0-9_]*))|["']([^"']+)["']\s+in\s+headers`)

// headerRead returns the secret header expr reads from headers, or "".
func headerRead(expr string, secret []string) string {
	for _, m := range headerAccess.FindAllStringSubmatch(expr, -1) {
		name := m[1] + m[2] + m[3]
		for _, h := range secret {
			if strings.EqualFold(name, h) {
				return h
			}
		}
	}
	return ""
}
